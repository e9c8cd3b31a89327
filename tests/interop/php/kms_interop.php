<?php
// The PHP SoapClient client of the interop tests: the served WSDL, SOAP 1.1 or 1.2 as asked,
// over HTTPS: one stream context trusting the CA file (peer and name verified, as by
// default) serves both the WSDL download and the calls.
// Runs every P1619.3 §6 client operation and prints what it saw as one JSON object; a step
// that fails is reported with the toolkit's own SoapFault or error ("step", "error"). Any PHP
// warning, notice or deprecation (e.g. while SoapClient reads the WSDL) fails the run.
//
// args: WSDL-URL CA-FILE 1.1|1.2 USER PASSWORD TAG STORED-KEY-HEX MISSING-KEY-ID

error_reporting(E_ALL);
set_error_handler(function (int $no, string $msg, string $file, int $line): bool {
    throw new ErrorException($msg, 0, $no, $file, $line);
});

[, $wsdl, $cafile, $version, $user, $password, $tag, $storedHex, $missing] = $argv;
$out = [];
$step = 'SoapClient';

function key_json($k): array {
    return ['id' => $k->KeyId, 'name' => $k->FriendlyName ?? null,
            'wrapping' => $k->KeyBlob->WrappingType, 'length' => $k->KeyBlob->Length,
            'data_b64' => base64_encode($k->KeyBlob->Data)];
}

function keys_json($response): array {
    $keys = $response->Key ?? [];
    return array_map('key_json', is_array($keys) ? $keys : [$keys]);
}

function names($list): array {
    $caps = $list->Capability ?? [];
    return array_map(fn($c) => $c->Name, is_array($caps) ? $caps : [$caps]);
}

try {
    $tls = stream_context_create(['ssl' => ['cafile' => $cafile]]);
    $client = new SoapClient($wsdl, [
        'stream_context' => $tls,
        'soap_version' => $version === '1.1' ? SOAP_1_1 : SOAP_1_2,
        'exceptions' => true,
        'cache_wsdl' => WSDL_CACHE_NONE,
        'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
    ]);

    $step = 'Authenticate';
    $session = $client->Authenticate([
        'RequestType' => 'Login',
        'Credential' => ['CredentialType' => 'UsernamePassword',
                         'UsernamePassword' => ['Username' => $user, 'Password' => $password]]]);
    $token = $session->Credential->SessionToken;
    $out['client_id'] = $session->ClientId;
    $out['session_token'] = $token;
    // From here on the session credential travels in the kms:Credential header.
    $client->__setSoapHeaders(new SoapHeader('urn:kms-ws:p1619.3:1', 'Credential',
        ['CredentialType' => 'Session', 'SessionToken' => $token]));

    $step = 'GetServerCapabilities';
    $out['capabilities'] = names($client->GetServerCapabilities([])->Capabilities);

    $step = 'NegotiateCapabilities';
    $offered = ['Capability' => [['Name' => 'operation:CreateKey'], ['Name' => 'operation:GetKey'],
                                 ['Name' => 'x-interop:unknown']]];
    $out['negotiated'] = names($client->NegotiateCapabilities(['Capabilities' => $offered])->Capabilities);

    $step = 'CreateKey';
    $created = $client->CreateKey(['FriendlyName' => "$tag-created", 'KeyLength' => 256])->Key;
    $out['created'] = key_json($created);

    $step = 'StoreKey';
    $value = hex2bin($storedHex);
    $stored = $client->StoreKey([
        'KeyBlob' => ['ProtocolVersion' => 1, 'WrappingType' => 'none', 'Length' => strlen($value),
                      'Data' => $value],
        'FriendlyName' => "$tag-stored"]);
    $out['stored_id'] = $stored->KeyId;

    $step = 'GetKey by id';
    $out['by_id'] = keys_json($client->GetKey(['KeyId' => $created->KeyId]));

    $step = 'GetKey by name';
    $out['by_name'] = keys_json($client->GetKey(['FriendlyName' => "$tag-stored"]));

    $step = 'PushAuditMessage';
    $pushed = $client->PushAuditMessage(['AuditMessage' => [
        ['KeyId' => $created->KeyId, 'Event' => 'KeyUsed', 'Message' => "$tag used the key"]]]);
    $out['audit'] = ['success' => $pushed->Success, 'accepted' => $pushed->Accepted];

    $step = 'GetRandomBytes';
    $out['random_b64'] = base64_encode($client->GetRandomBytes(['NumberOfBytes' => 48])->RandomBytes);

    $step = 'GetKey of a missing key';
    try {
        $client->GetKey(['KeyId' => $missing]);
        $out['fault'] = 'no fault';
    } catch (SoapFault $f) {
        $code = $f->detail->KmsFault->ErrorCode ?? null;
        $out['fault'] = $code === null
            ? ['error' => "SoapFault {$f->faultcode}: {$f->getMessage()}"]
            : ['error_code' => $code, 'api' => 'SoapFault->detail->KmsFault->ErrorCode'];
    }
    $step = 'done';
} catch (Throwable $e) {
    $out['error'] = get_class($e) . ': ' . $e->getMessage();
}
$out['step'] = $step;
echo json_encode($out), "\n";
