using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Forgetless.Packaging;

/// <summary>
/// DSSE, the Dead Simple Signing Envelope (secure-systems-lab/dsse, v1): the signature covers
/// <c>PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body</c>, so the payload type is authenticated
/// with the payload. The JSON envelope is <c>{"payload": base64, "payloadType": ..., "signatures": [{"keyid", "sig"}]}</c>.
/// Signatures are ECDSA, DER-encoded as cosign and sigstore write them; verification also accepts the raw r||s form
/// (the specification's own test vector uses it).
/// </summary>
public static class Dsse
{
    /// <summary>The payload type of an in-toto statement.</summary>
    public const string InTotoPayloadType = "application/vnd.in-toto+json";

    public static byte[] Pae(string payloadType, byte[] body)
    {
        byte[] type = Encoding.UTF8.GetBytes(payloadType);
        byte[] head = Encoding.ASCII.GetBytes($"DSSEv1 {type.Length} ");
        byte[] middle = Encoding.ASCII.GetBytes($" {body.Length} ");
        return [.. head, .. type, .. middle, .. body];
    }

    public static JsonObject Sign(byte[] payload, string payloadType, ECDsa key) => new()
    {
        ["payload"] = Convert.ToBase64String(payload),
        ["payloadType"] = payloadType,
        ["signatures"] = new JsonArray(new JsonObject
        {
            ["keyid"] = SigningKeys.KeyId(key),
            ["sig"] = Convert.ToBase64String(key.SignData(Pae(payloadType, payload), SigningKeys.HashFor(key), DSASignatureFormat.Rfc3279DerSequence)),
        }),
    };

    /// <summary>The envelope's payload bytes; null when it is not an envelope.</summary>
    public static byte[]? Payload(JsonNode? envelope) => envelope?["payload"]?.GetValue<string>() is { } text ? Base64(text) : null;

    /// <summary>Null when one of the envelope's signatures verifies with <paramref name="key"/>; otherwise why not.</summary>
    public static string? Verify(JsonObject envelope, ECDsa key)
    {
        if (Payload(envelope) is not { } payload || envelope["payloadType"]?.GetValue<string>() is not { } type)
            return "not a DSSE envelope (payload and payloadType are required, payload in base64)";
        if (envelope["signatures"] is not JsonArray { Count: > 0 } signatures) return "the envelope holds no signature";
        byte[] pae = Pae(type, payload);
        var hash = SigningKeys.HashFor(key);
        foreach (var signature in signatures)
        {
            if (signature?["sig"]?.GetValue<string>() is not { } text || Base64(text) is not { } sig) continue;
            var format = sig.Length > 0 && sig[0] == 0x30 && sig.Length != 2 * SigningKeys.FieldBytes(key)
                ? DSASignatureFormat.Rfc3279DerSequence
                : DSASignatureFormat.IeeeP1363FixedFieldConcatenation;
            try
            {
                if (key.VerifyData(pae, sig, hash, format)) return null;
            }
            catch (CryptographicException)
            {
                // A malformed signature is one that does not verify.
            }
        }
        return $"no signature in the envelope verifies with the key {SigningKeys.KeyId(key)[..16]}…";
    }

    /// <summary>Standard or URL-safe base64, with or without padding (DSSE allows either); null when neither.</summary>
    private static byte[]? Base64(string text)
    {
        string standard = text.Replace('-', '+').Replace('_', '/');
        standard = standard.PadRight(standard.Length + (4 - standard.Length % 4) % 4, '=');
        try
        {
            return Convert.FromBase64String(standard);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
