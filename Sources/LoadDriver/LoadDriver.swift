import Foundation

/// `pm-load`: the hot loop of the load test (integration/load/loadgen.py), in Swift so that the client side costs
/// a few tens of µs of CPU per request instead of Python's ~185 µs, which on a small machine was taken from
/// the server being measured. Reads one JSON config on stdin, runs every client from `startAt` to `endAt` on
/// one poll() loop, and writes one JSON report on stdout in the shape of loadgen.py's Python `worker()`.
@main
enum LoadDriver {
    static func main() {
        // A server that goes away must become a "transport" error, not a silent SIGPIPE death.
        signal(SIGPIPE, SIG_IGN)
        let config: Config
        do {
            config = try JSONDecoder().decode(Config.self, from: try FileHandle.standardInput.readToEnd() ?? Data())
        } catch {
            complain("unreadable config on stdin: \(error)")
            exit(2)
        }
        if let problem = config.problem {
            complain("unusable config: \(problem)")
            exit(2)
        }
        let recorder = Recorder(startAt: config.startAt)
        sleep(until: config.startAt)
        let cpuBefore = cpuSeconds()
        let started = config.clients.compactMap { start($0, config: config, recorder: recorder) }
        var clients = started.filter { !$0.isDone }
        // As in loadgen.py: clients still busy `grace` seconds after the end are timeouts (reported anyway).
        let deadline = wallClock() + max(1.0, config.endAt - wallClock()) + config.grace
        while !clients.isEmpty, wallClock() < deadline {
            serve(&clients, until: deadline)
        }
        for _ in clients {
            recorder.error("timeout", "a client was still waiting for an answer \(config.grace) s after the end")
        }
        // Every client's acknowledged orders, timed out or not; one whose connection failed acknowledged none.
        var results = Dictionary(
            config.clients.map {
                (String($0.index), Report.ClientResult(uid: $0.uid, acked: [], cancelled: 0))
            }, uniquingKeysWith: { first, _ in first })
        for client in started { results[String(client.account.index)] = client.result }
        write(recorder.report(results: results, cpu: cpuSeconds() - cpuBefore))
    }

    /// Connects a client and sends its first order; nil (after recording why) when that fails.
    private static func start(_ account: Config.Account, config: Config, recorder: Recorder) -> Client? {
        do {
            let client = try Client(account: account, config: config, recorder: recorder)
            try client.nextCycle()
            return client
        } catch {
            recorder.error("transport", "client \(account.index): \(error)")
            return nil
        }
    }

    /// One poll() over the clients' sockets; each readable client reads and, on a full answer, sends its next
    /// request. Finished clients leave the list.
    private static func serve(_ clients: inout [Client], until deadline: Double) {
        var polled = clients.map { pollfd(fd: $0.socket, events: Int16(POLLIN), revents: 0) }
        let wait = Int32(min(1000, max(0, (deadline - wallClock()) * 1000).rounded(.up)))
        guard poll(&polled, nfds_t(polled.count), wait) > 0 else { return }
        for (client, entry) in zip(clients, polled) where entry.revents != 0 {
            client.readable()
        }
        clients.removeAll { $0.isDone }
    }

    private static func sleep(until time: Double) {
        let delay = time - wallClock()
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
    }

    /// User + system CPU seconds of the whole process, all threads.
    private static func cpuSeconds() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
            getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
            getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ value: timeval) -> Double { Double(value.tv_sec) + Double(value.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// A message on stderr; if even that fails there is no one left to tell.
    private static func complain(_ message: String) {
        try? FileHandle.standardError.write(contentsOf: Data("pm-load: \(message)\n".utf8))
    }

    private static func write(_ report: Report) {
        do {
            try FileHandle.standardOutput.write(contentsOf: try JSONEncoder().encode(report) + Data("\n".utf8))
        } catch {
            complain("cannot write the report: \(error)")
            exit(1)
        }
    }
}
