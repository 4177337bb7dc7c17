import Crypto
import Foundation

/// Encrypts API secrets at rest (AES-GCM under a master key kept in a file beside the database) and hashes
/// passphrases (salted SHA-256). Secrets must be recoverable to verify HMAC signatures, so they are
/// encrypted, not hashed; they are never logged.
public struct SecretBox: Sendable {
    let keyBytes: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    package init(key: SymmetricKey) { keyBytes = key.withUnsafeBytes { Array($0) } }

    /// A box with this 32-byte key.
    public init(keyBytes: [UInt8]) {
        precondition(keyBytes.count == 32, "a SecretBox key is 32 bytes")
        self.keyBytes = keyBytes
    }

    /// A random key, for in-memory databases.
    package static func ephemeral() -> SecretBox { SecretBox(key: SymmetricKey(size: .bits256)) }

    /// The key stored at `path` (created with mode 0600 when missing).
    package static func load(fromFile path: String) throws -> SecretBox {
        let manager = FileManager.default
        if let data = manager.contents(atPath: path), data.count == 32 {
            return SecretBox(key: SymmetricKey(data: data))
        }
        let key = SymmetricKey(size: .bits256)
        let data = key.withUnsafeBytes { Data($0) }
        guard manager.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw CredentialError("cannot create the key file \(path)")
        }
        return SecretBox(key: key)
    }

    package func seal(_ secret: String) throws -> Data {
        guard let combined = try AES.GCM.seal(Data(secret.utf8), using: key).combined else {
            throw CredentialError("cannot seal a secret")
        }
        return combined
    }

    package func open(_ sealed: Data) throws -> String {
        let box = try AES.GCM.SealedBox(combined: sealed)
        return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
    }

    /// `salt:hex(sha256(salt + passphrase))`.
    package static func hashPassphrase(_ passphrase: String, salt: String = randomToken(bytes: 8)) -> String {
        let digest = SHA256.hash(data: Data((salt + passphrase).utf8))
        return salt + ":" + hex(digest, digits: lowerDigits)
    }

    /// Whether `passphrase` matches a stored hash, compared in constant time.
    package static func verifyPassphrase(_ passphrase: String, against stored: String) -> Bool {
        guard let colon = stored.firstIndex(of: ":") else { return false }
        let salt = String(stored[..<colon])
        return constantTimeEqual(Array(hashPassphrase(passphrase, salt: salt).utf8), Array(stored.utf8))
    }

    /// A random hexadecimal token.
    package static func randomToken(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return hex((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }, digits: upperDigits)
    }

    static let lowerDigits = Array("0123456789abcdef".utf8)
    static let upperDigits = Array("0123456789ABCDEF".utf8)

    /// Two hexadecimal digits per byte. (String(format:) cost a tenth of the server's time on every signed request.)
    static func hex(_ bytes: some Sequence<UInt8>, digits: [UInt8]) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

package struct CredentialError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Byte-wise comparison whose time does not depend on where the inputs differ.
package func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<lhs.count { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}

/// OKX's signature: `Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))`.
public func okxSignature(secret: String, timestamp: String, method: String, requestPath: String, body: [UInt8]) -> String {
    okxSignature(
        keyed: HMAC<SHA256>(key: SymmetricKey(data: Data(secret.utf8))), timestamp: timestamp, method: method, requestPath: requestPath,
        body: body)
}

/// The same signature from an HMAC already keyed with the secret: the authenticator keeps one per API key
/// and copies it per request (HMAC is a value: the copy starts from the keyed state, the original is untouched),
/// so the key schedule is not redone for every request.
package func okxSignature(keyed: HMAC<SHA256>, timestamp: String, method: String, requestPath: String, body: [UInt8]) -> String {
    var mac = keyed
    for var part in [timestamp, method, requestPath] { part.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) } }
    mac.update(data: body)
    return Data(mac.finalize()).base64EncodedString()
}
