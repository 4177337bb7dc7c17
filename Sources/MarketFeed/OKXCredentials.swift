import Crypto
import Foundation

/// An OKX API key, its secret and passphrase. Printing one never shows the secret or the passphrase.
public struct OKXCredentials: Sendable, CustomStringConvertible {
    public var apiKey: String
    public var secretKey: String
    public var passphrase: String

    public init(apiKey: String, secretKey: String, passphrase: String) {
        self.apiKey = apiKey
        self.secretKey = secretKey
        self.passphrase = passphrase
    }

    public var description: String { "OKXCredentials(apiKey: \(apiKey.prefix(4))…, secret and passphrase hidden)" }

    /// The four `OK-ACCESS-*` headers of a request (docs/methodology/06-sandbox-api.md §2): `sign =
    /// Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))`, where `requestPath` includes the query
    /// string exactly as sent and `timestamp` is ISO 8601 UTC with milliseconds (`2026-11-27T03:28:31.444Z`).
    public func headers(method: String, requestPath: String, body: String = "", timestamp: String) -> [(String, String)] {
        let message = Data((timestamp + method.uppercased() + requestPath + body).utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secretKey.utf8)))
        return [
            ("OK-ACCESS-KEY", apiKey),
            ("OK-ACCESS-SIGN", Data(mac).base64EncodedString()),
            ("OK-ACCESS-TIMESTAMP", timestamp),
            ("OK-ACCESS-PASSPHRASE", passphrase),
        ]
    }

    /// OKX's timestamp format for `date`: `2026-11-27T03:28:31.444Z`.
    public static func timestamp(_ date: Date = Date()) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = milliseconds / 1000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(milliseconds % 1000))
    }
}
