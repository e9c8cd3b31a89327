// The node-soap client of the interop tests: the served WSDL, SOAP 1.1 or 1.2 (node-soap
// writes SOAP 1.2 only with forceSoap12Headers), on the port named on the command line.
// Runs every P1619.3 §6 client operation and prints what it saw as one JSON object; a step
// that fails is reported with the toolkit's own error ("step", "error"). A process warning or
// console.warn (e.g. while node-soap reads the WSDL) fails the run. Over HTTPS: an https
// agent trusting the CA file (and verifying the server's name, as by default) fetches the
// WSDL (wsdl_options) and carries every call (the call options).
//
// args: WSDL-URL CA-FILE 1.1|1.2 SERVICE PORT USER PASSWORD TAG STORED-KEY-HEX MISSING-KEY-ID
'use strict';

const fs = require('fs');
const https = require('https');
const soap = require('soap');

const [wsdl, cafile, version, serviceName, portName, user, password, tag, storedHex, missing] =
  process.argv.slice(2);
const tls = { httpsAgent: new https.Agent({ ca: fs.readFileSync(cafile) }) };
const KMS = 'urn:kms-ws:p1619.3:1';
const out = {};
const warnings = [];
process.on('warning', (w) => warnings.push(String(w)));
console.warn = (...args) => warnings.push(args.join(' '));

const list = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const keyJson = (k) => ({
  id: k.KeyId, name: k.FriendlyName ?? null, wrapping: k.KeyBlob.WrappingType,
  length: Number(k.KeyBlob.Length), data_b64: k.KeyBlob.Data,
});
const names = (caps) => list(caps && caps.Capability).map((c) => c.Name);

function call(port, operation, args) {
  return new Promise((resolve, reject) => {
    port[operation](args, (err, result) => (err ? reject(err) : resolve(result)), tls);
  });
}

// The kms:KmsFault detail of a SOAP 1.2 (Detail) or SOAP 1.1 (detail) fault node-soap
// parsed, and the path it was found at.
function kmsFault(err) {
  const fault = err && err.root && err.root.Envelope && err.root.Envelope.Body &&
    err.root.Envelope.Body.Fault;
  const member = fault && (fault.Detail ? 'Detail' : fault.detail ? 'detail' : null);
  const found = member && fault[member].KmsFault;
  return found && { fault: found,
                    api: `err.root.Envelope.Body.Fault.${member}.KmsFault.ErrorCode` };
}

function describe(err) {
  const found = kmsFault(err);
  const text = String(err && err.message ? err.message : err);
  return found ? `${text} (${found.fault.ErrorCode})` : text.slice(0, 2000);
}

async function main() {
  let step = 'createClient';
  try {
    const client = await soap.createClientAsync(wsdl, {
      forceSoap12Headers: version === '1.2',
      disableCache: true,
      wsdl_options: tls,
    });
    const port = client[serviceName][portName];

    step = 'Authenticate';
    const session = await call(port, 'Authenticate', {
      RequestType: 'Login',
      Credential: { CredentialType: 'UsernamePassword',
                    UsernamePassword: { Username: user, Password: password } },
    });
    const token = session.Credential.SessionToken;
    out.client_id = session.ClientId;
    out.session_token = token;
    // From here on the session credential travels in the kms:Credential header.
    client.addSoapHeader({ Credential: { CredentialType: 'Session', SessionToken: token } },
                         '', 'kms', KMS);

    step = 'GetServerCapabilities';
    out.capabilities = names((await call(port, 'GetServerCapabilities', {})).Capabilities);

    step = 'NegotiateCapabilities';
    const offered = { Capability: [{ Name: 'operation:CreateKey' }, { Name: 'operation:GetKey' },
                                   { Name: 'x-interop:unknown' }] };
    out.negotiated = names((await call(port, 'NegotiateCapabilities',
                                       { Capabilities: offered })).Capabilities);

    step = 'CreateKey';
    const created = (await call(port, 'CreateKey',
                                { FriendlyName: `${tag}-created`, KeyLength: 256 })).Key;
    out.created = keyJson(created);

    step = 'StoreKey';
    const value = Buffer.from(storedHex, 'hex');
    const stored = await call(port, 'StoreKey', {
      KeyBlob: { ProtocolVersion: 1, WrappingType: 'none', Length: value.length,
                 Data: value.toString('base64') },
      FriendlyName: `${tag}-stored`,
    });
    out.stored_id = stored.KeyId;

    step = 'GetKey by id';
    out.by_id = list((await call(port, 'GetKey', { KeyId: created.KeyId })).Key).map(keyJson);

    step = 'GetKey by name';
    out.by_name = list((await call(port, 'GetKey', { FriendlyName: `${tag}-stored` })).Key)
      .map(keyJson);

    step = 'PushAuditMessage';
    const pushed = await call(port, 'PushAuditMessage', {
      AuditMessage: [{ KeyId: created.KeyId, Event: 'KeyUsed', Message: `${tag} used the key` }],
    });
    out.audit = { success: pushed.Success === true || pushed.Success === 'true',
                  accepted: Number(pushed.Accepted) };

    step = 'GetRandomBytes';
    out.random_b64 = (await call(port, 'GetRandomBytes', { NumberOfBytes: 48 })).RandomBytes;

    step = 'GetKey of a missing key';
    try {
      await call(port, 'GetKey', { KeyId: missing });
      out.fault = 'no fault';
    } catch (err) {
      const found = kmsFault(err);
      out.fault = found ? { error_code: found.fault.ErrorCode, api: found.api }
        : { error: describe(err) };
    }
    step = 'done';
  } catch (err) {
    out.error = describe(err);
  }
  out.step = step;
  if (warnings.length) out.warnings = warnings;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main();
