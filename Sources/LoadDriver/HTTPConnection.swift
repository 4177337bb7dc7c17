import Foundation

/// A connection failure or an answer that cannot be framed: loadgen.py records it as "transport".
struct TransportError: Error, CustomStringConvertible {
    let description: String

    /// The failed call with the C library's text for `errno`.
    static func system(_ call: String) -> TransportError {
        TransportError(description: "\(call): \(String(cString: strerror(errno)))")
    }
}

/// One HTTP/1.1 keep-alive connection with one request in flight, answers framed by Content-Length. Plain
/// POSIX sockets on purpose: the point of this driver is to spend as little CPU per request as possible next
/// to the server it measures. The socket stays blocking: requests are small enough for the socket buffer, and
/// it is read only when poll() says it is readable.
final class HTTPConnection {
    let fd: Int32
    /// Received bytes not yet consumed by an answer.
    private var inbox: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)

    init(host: String, port: Int) throws {
        fd = try Self.dial(host: host, port: port)
        var one: Int32 = 1
        // Small requests must leave at once, not wait for Nagle's algorithm.
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close(fd)
    }

    private static func dial(host: String, port: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw TransportError(description: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var failure = TransportError(description: "no address for \(host)")
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor?.pointee {
            let fd = socket(info.ai_family, info.ai_socktype, info.ai_protocol)
            if fd >= 0 {
                if connect(fd, info.ai_addr, info.ai_addrlen) == 0 { return fd }
                failure = .system("connect to \(host):\(port)")
                close(fd)
            }
            cursor = info.ai_next
        }
        throw failure
    }

    /// Writes the whole request (blocking, which for a few hundred bytes on a fresh socket buffer is at once).
    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw TransportError.system("write")
            }
            sent += count
        }
    }

    /// Reads what the readable socket has and returns the answer once it is complete: the head may arrive
    /// split over several reads, the body is exactly Content-Length bytes. A close is an error, since a
    /// keep-alive server closes only when something went wrong.
    func receive() throws -> (status: Int, body: [UInt8])? {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR || errno == EAGAIN { return nil }
            throw TransportError.system("read")
        }
        if count == 0 { throw TransportError(description: "connection closed by the server") }
        inbox += chunk[0..<count]
        guard let headEnd = Self.find([13, 10, 13, 10], in: inbox) else { return nil }
        let head = inbox[0..<headEnd]
        guard let status = Self.status(head) else {
            throw TransportError(description: "bad status line: \(String(decoding: head.prefix(200), as: UTF8.self))")
        }
        guard let length = Self.contentLength(head) else {
            throw TransportError(description: "response without Content-Length: \(String(decoding: head.prefix(200), as: UTF8.self))")
        }
        let total = headEnd + 4 + length
        guard inbox.count >= total else { return nil }
        let body = Array(inbox[(headEnd + 4)..<total])
        inbox.removeFirst(total)
        return (status, body)
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        for index in 0...(bytes.count - needle.count) where bytes[index] == needle[0] {
            if bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
        }
        return nil
    }

    /// The three digits after the first space of "HTTP/1.1 200 OK".
    private static func status(_ head: ArraySlice<UInt8>) -> Int? {
        guard let space = head.firstIndex(of: 32), head.endIndex - space > 3 else { return nil }
        return Int(String(decoding: head[(space + 1)..<(space + 4)], as: UTF8.self))
    }

    /// The Content-Length header's value (names are case-insensitive), read from the bytes without building
    /// strings or line arrays: this runs once per answer.
    private static func contentLength(_ head: ArraySlice<UInt8>) -> Int? {
        let name = Array("\ncontent-length:".utf8)
        var at = head.startIndex
        while let newline = head[at...].firstIndex(of: 10) {
            at = newline + 1
            let lowered = head[newline...].prefix(name.count).lazy.map { (65...90).contains($0) ? $0 + 32 : $0 }
            guard lowered.elementsEqual(name) else { continue }
            let digits = head[(newline + name.count)...].drop { $0 == 32 || $0 == 9 }.prefix { (48...57).contains($0) }
            guard (1...9).contains(digits.count) else { return nil }
            return digits.reduce(0) { $0 * 10 + Int($1 - 48) }
        }
        return nil
    }
}
