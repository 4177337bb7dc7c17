import Foundation
import MarginStore
import MarginStorePostgres
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A connection lost at `COMMIT` leaves the client not knowing whether its transaction committed. The PostgreSQL
/// ledger must learn the outcome by re-reading (`txid_status`), never guess it: these tests put a proxy between
/// the ledger and the server that cuts the connection exactly there, in each of the three ways it can go.
struct CommitOutcomeTests {
    /// Runs `body` with a scratch ledger reached through a fresh proxy, and the same ledger reached directly to
    /// check what the server holds; closes and removes everything after.
    static func throughAProxy(_ body: (CommitCuttingProxy, _ proxied: PostgresLedger, _ direct: PostgresLedger) throws -> Void) throws {
        let scratch = try ScratchLedger(.postgres)
        defer { scratch.remove() }
        let direct = try #require(scratch.store as? PostgresLedger)
        let proxy = try CommitCuttingProxy(upstreamPort: UInt16(direct.address.port))
        defer { proxy.stop() }
        var address = direct.address
        address.host = "127.0.0.1"
        address.port = Int(proxy.port)
        let proxied = try PostgresLedger(address)
        defer { proxied.close() }
        try body(proxy, proxied, direct)
    }

    /// Writes the setting `probe:NAME` (one transaction).
    static func probe(_ name: String, into ledger: PostgresLedger) throws {
        try ledger.write { writer in try writer.store(SettingRecord(key: "probe:" + name, value: "1")) }
    }

    /// The probes the server holds.
    static func probes(_ ledger: PostgresLedger) throws -> [String] {
        try ledger.settings(prefix: "probe:").map(\.key)
    }

    /// The server committed and its answer was lost: the write succeeds, having asked a new connection.
    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func aCommitWhoseAnswerIsLostIsFoundCommitted() throws {
        try Self.throughAProxy { proxy, proxied, direct in
            proxy.arm(.afterServerCommits)
            try Self.probe("1", into: proxied)
            #expect(proxy.cuts == 1, "the proxy cut the connection at COMMIT")
            #expect(try Self.probes(direct) == ["probe:1"])
            // The ledger goes on writing (it is not left in doubt).
            try Self.probe("2", into: proxied)
            #expect(try Self.probes(direct) == ["probe:1", "probe:2"])
        }
    }

    /// The connection was lost before the server saw COMMIT: the server aborts the transaction, the write throws,
    /// nothing of it is stored, and the next write works.
    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func aCommitTheServerNeverSawFailsAndStoresNothing() throws {
        try Self.throughAProxy { proxy, proxied, direct in
            proxy.arm(.beforeServerSeesCommit)
            #expect(throws: PostgresLedgerError.self) { try Self.probe("lost", into: proxied) }
            #expect(proxy.cuts == 1, "the proxy cut the connection at COMMIT")
            #expect(try Self.probes(direct) == [])
            try Self.probe("next", into: proxied)
            #expect(try Self.probes(direct) == ["probe:next"])
        }
    }

    /// The answer was lost and the server cannot be asked: the outcome is unknown, so the write throws saying so
    /// and the ledger refuses every later write (memory and storage may differ; a restart reloads the truth),
    /// even once the server is reachable again. It did commit: reporting a failure would have been a guess.
    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func anUnknownOutcomeIsNeverGuessed() throws {
        try Self.throughAProxy { proxy, proxied, direct in
            proxy.arm(.afterServerCommits, thenRefuseConnections: true)
            do {
                try Self.probe("doubt", into: proxied)
                Issue.record("a write whose outcome is unknown was reported as done")
            } catch let error as PostgresLedgerError {
                #expect(error.description.contains("unknown"), "\(error)")
            }
            #expect(try Self.probes(direct) == ["probe:doubt"], "the server did commit")
            proxy.acceptConnections()
            #expect(throws: PostgresLedgerError.self) { try Self.probe("after", into: proxied) }
            #expect(try Self.probes(direct) == ["probe:doubt"])
        }
    }
}

/// A loopback TCP proxy to a PostgreSQL server (IPv4 loopback) that passes everything through, except that once
/// armed it cuts the first connection whose client sends `COMMIT`: either after forwarding it and swallowing the
/// server's answer (the commit happened, the client never learns), or without forwarding it (the server sees
/// the connection drop inside the transaction). Blocking sockets, a thread per direction: test code.
final class CommitCuttingProxy: @unchecked Sendable {  // @unchecked: mutable state behind `lock`
    enum Cut { case afterServerCommits, beforeServerSeesCommit }

    /// One proxied connection: the two sockets, closed by the pump that stops last.
    final class Pair: @unchecked Sendable {  // @unchecked: mutable state behind the proxy's lock
        let client: Int32
        let server: Int32
        var swallowing = false
        var pumpsRunning = 2
        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }
    }

    let port: UInt16
    private let listener: Int32
    private let upstreamPort: UInt16
    private let lock = NSLock()
    private var armed: Cut?
    private var refuseAfterCut = false
    private var refusing = false
    private var cutCount = 0

    init(upstreamPort: UInt16) throws {
        self.upstreamPort = upstreamPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ProxyError("socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw ProxyError("bind/listen: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        self.listener = listener
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Cuts the next connection that sends COMMIT; with `thenRefuseConnections`, new connections are closed at once
    /// from then on (the server cannot be asked), until ``acceptConnections()``.
    func arm(_ cut: Cut, thenRefuseConnections: Bool = false) {
        lock.withLock {
            armed = cut
            refuseAfterCut = thenRefuseConnections
        }
    }

    func acceptConnections() { lock.withLock { refusing = false } }

    /// Stops accepting (connections already proxied run until either side closes).
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// How many connections were cut.
    var cuts: Int { lock.withLock { cutCount } }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            if lock.withLock({ refusing }) {
                close(client)
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            let pair = Pair(client: client, server: server)
            Thread.detachNewThread { [self] in pumpFromClient(pair) }
            Thread.detachNewThread { [self] in pumpFromServer(pair) }
        }
    }

    private static let commit = Array("COMMIT".utf8)

    private static func mentionsCommit(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count >= commit.count else { return false }
        return (bytes.startIndex...(bytes.endIndex - commit.count)).contains { bytes[$0..<($0 + commit.count)].elementsEqual(commit) }
    }

    private static func send(_ bytes: ArraySlice<UInt8>, to socket: Int32) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// Shuts both sockets down (the other pump's read returns); the last pump to stop closes them.
    private func cut(_ pair: Pair) {
        shutdown(pair.client, Int32(SHUT_RDWR))
        shutdown(pair.server, Int32(SHUT_RDWR))
    }

    private func stopped(_ pair: Pair) {
        let last = lock.withLock {
            pair.pumpsRunning -= 1
            return pair.pumpsRunning == 0
        }
        cut(pair)
        if last {
            close(pair.client)
            close(pair.server)
        }
    }

    private func pumpFromClient(_ pair: Pair) {
        defer { stopped(pair) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pair.client, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            let chunk = buffer[0..<count]
            let action: Cut? = lock.withLock {
                guard let armed, Self.mentionsCommit(chunk) else { return nil }
                self.armed = nil
                cutCount += 1
                if refuseAfterCut { refusing = true }
                if armed == .afterServerCommits { pair.swallowing = true }
                return armed
            }
            switch action {
            case .beforeServerSeesCommit?:
                return
            case .afterServerCommits?, nil:
                guard Self.send(chunk, to: pair.server) else { return }
            }
        }
    }

    private func pumpFromServer(_ pair: Pair) {
        defer { stopped(pair) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pair.server, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            let chunk = buffer[0..<count]
            if lock.withLock({ pair.swallowing }) {
                // The server's answer to COMMIT (CommandComplete "COMMIT") is dropped, and the connection with it.
                if Self.mentionsCommit(chunk) { return }
                continue
            }
            guard Self.send(chunk, to: pair.client) else { return }
        }
    }
}

struct ProxyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
