import Crypto
import Foundation

/// OKX timestamps ("2024-01-02T03:04:05.678Z", UTC), the date-and-time part formatted once per second
/// because a formatter per request would cost more than the rest of the request.
struct Timestamps {
    private var second = -1
    private var prefix = ""

    mutating func now() -> String {
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        if clock.tv_sec != second {
            second = clock.tv_sec
            var seconds = clock.tv_sec
            var fields = tm()
            gmtime_r(&seconds, &fields)
            prefix =
                "\(fields.tm_year + 1900)-\(Self.pad(fields.tm_mon + 1))-\(Self.pad(fields.tm_mday))T"
                + "\(Self.pad(fields.tm_hour)):\(Self.pad(fields.tm_min)):\(Self.pad(fields.tm_sec))"
        }
        let millis = clock.tv_nsec / 1_000_000
        return prefix + (millis < 10 ? ".00" : millis < 100 ? ".0" : ".") + "\(millis)Z"
    }

    private static func pad(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}

/// One trader of the load test, as `run_client()` in loadgen.py: its own key and keep-alive connection,
/// looping "place resting limit buys, cancel them" until the end time: one order per request through `order`
/// and `cancel-order`, or `batch` orders per request through `batch-orders` and `cancel-batch-orders`. A
/// state machine driven by the one poll() loop that serves every client: no threads, no locks, and answers
/// that arrive together are handled in one wakeup.
final class Client {
    private enum State {
        case placing(clOrdIds: [String])
        case cancelling(ordIds: [String])
        case done
    }

    let account: Config.Account
    private let config: Config
    private let recorder: Recorder
    private let connection: HTTPConnection
    /// HMAC already keyed with the secret, copied for each request rather than keyed again.
    private let keyed: HMAC<SHA256>
    /// The request head from "HTTP/1.1" up to the timestamp's value, the same for every request.
    private let fixedHead: [UInt8]
    private var timestamps = Timestamps()
    private var state = State.done
    private var sequence = 0
    /// When the request in flight was sent (monotonic ns).
    private var started: UInt64 = 0
    private var acked: [String] = []
    private var cancelled = 0

    /// This client's part of the report: loadgen.py checks these ordIds against the database.
    var result: Report.ClientResult {
        Report.ClientResult(uid: account.uid, acked: acked, cancelled: cancelled)
    }

    var socket: Int32 { connection.fd }
    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    init(account: Config.Account, config: Config, recorder: Recorder) throws {
        self.account = account
        self.config = config
        self.recorder = recorder
        connection = try HTTPConnection(host: config.host, port: config.port)
        keyed = HMAC<SHA256>(key: SymmetricKey(data: Array(account.secretKey.utf8)))
        fixedHead = Array(
            " HTTP/1.1\r\nHost: \(config.host):\(config.port)\r\nContent-Type: application/json\r\nOK-ACCESS-KEY: \(account.apiKey)\r\nOK-ACCESS-PASSPHRASE: \(account.passphrase)\r\nOK-ACCESS-TIMESTAMP: "
                .utf8)
    }

    /// Starts the next cycle, or ends the client once the end time has come.
    func nextCycle() throws {
        guard wallClock() < config.endAt else {
            state = .done
            return
        }
        sequence += 1
        let count = config.ordersPerRequest
        let clOrdIds = count == 1 ? ["L\(account.index)n\(sequence)"] : (0..<count).map { "L\(account.index)n\(sequence)b\($0)" }
        state = .placing(clOrdIds: clOrdIds)
        let orders = clOrdIds.map {
            #"{"instId":"\#(config.instId)","tdMode":"cross","side":"buy","ordType":"limit","px":"\#(config.price)","sz":"\#(config.size)","clOrdId":"\#($0)"}"#
        }
        if count == 1 {
            try send(path: "/api/v5/trade/order", body: orders[0])
        } else {
            try send(path: "/api/v5/trade/batch-orders", body: "[" + orders.joined(separator: ",") + "]")
        }
    }

    /// Called when the socket is readable: on a complete answer, records it and sends the next request. A
    /// transport failure is recorded and ends this client, as in loadgen.py.
    func readable() {
        do {
            guard let (status, body) = try connection.receive() else { return }
            let micros = Double(monotonicNanos() - started) / 1000
            try advance(status: status, body: body, micros: micros)
        } catch {
            recorder.error("transport", "client \(account.index): \(error)")
            state = .done
        }
    }

    /// The answer to the request in flight. Every order is timed and counted on its own (an order of a batch
    /// takes its request's latency); the orders placed are then cancelled, and a cycle none of whose orders
    /// was placed skips the cancel.
    private func advance(status: Int, body: [UInt8], micros: Double) throws {
        switch state {
        case .placing(let clOrdIds):
            var ordIds: [String] = []
            for (index, placed) in succeeded(.place, status: status, body: body, expected: clOrdIds.count) {
                guard let ordId = placed.ordId else {
                    recorder.error("place:no-ordId", "\(placed)")
                    continue
                }
                recorder.succeeded(.place, micros: micros)
                acked.append(ordId)
                ordIds.append(ordId)
                if placed.clOrdId != clOrdIds[index] {
                    recorder.error("place:clOrdId-mismatch", "\(placed)")
                }
            }
            guard !ordIds.isEmpty else { return try nextCycle() }
            state = .cancelling(ordIds: ordIds)
            let cancels = ordIds.map { #"{"instId":"\#(config.instId)","ordId":"\#($0)"}"# }
            if cancels.count == 1, config.ordersPerRequest == 1 {
                try send(path: "/api/v5/trade/cancel-order", body: cancels[0])
            } else {
                try send(path: "/api/v5/trade/cancel-batch-orders", body: "[" + cancels.joined(separator: ",") + "]")
            }
        case .cancelling(let ordIds):
            for (index, answered) in succeeded(.cancel, status: status, body: body, expected: ordIds.count) {
                if answered.ordId == ordIds[index] {
                    recorder.succeeded(.cancel, micros: micros)
                    cancelled += 1
                } else {
                    recorder.error("cancel:ordId-mismatch", "cancelled \(answered.ordId ?? "None") instead of \(ordIds[index])")
                }
            }
            try nextCycle()
        case .done:
            throw TransportError(description: "an answer nothing was asked for")
        }
    }

    /// The answer's data items that succeeded (sCode "0", with code "0", or "2" for a partly successful batch,
    /// and no 5xx), with their positions in the request; every other item, or the whole answer when it cannot
    /// be read or holds the wrong number of items, is recorded as an error under loadgen.py's key.
    private func succeeded(_ operation: Operation, status: Int, body: [UInt8], expected: Int) -> [(Int, Answer.Item)] {
        let op = operation.rawValue
        guard let answer = Answer(json: body) else {
            recorder.error("\(op):HTTP\(status):None/-", "unparsable answer: " + String(decoding: body.prefix(300), as: UTF8.self))
            return []
        }
        let items = answer.items.isEmpty ? [Answer.Item()] : answer.items
        if answer.items.count > expected || (answer.code == "0" && answer.items.count != expected) {
            recorder.error("\(op):item-count", "\(answer.items.count) items answer \(expected) orders")
        }
        var good: [(Int, Answer.Item)] = []
        for (index, item) in items.enumerated().prefix(expected) {
            guard status < 500, answer.code == "0" || (answer.code == "2" && expected > 1), item.sCode == "0" else {
                let message = item.sMsg.flatMap { $0.isEmpty ? nil : $0 } ?? answer.msg ?? ""
                recorder.error("\(op):HTTP\(status):\(answer.code ?? "None")/\(item.sCode ?? "-")", message)
                continue
            }
            good.append((index, item))
        }
        return good
    }

    /// Signs and sends one POST: OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + "POST" + path + body)).
    private func send(path: String, body: String) throws {
        let timestamp = timestamps.now()
        var mac = keyed
        mac.update(data: Array((timestamp + "POST" + path + body).utf8))
        let sign = Data(mac.finalize()).base64EncodedString()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fixedHead.count + 256 * config.ordersPerRequest)
        bytes += "POST ".utf8
        bytes += path.utf8
        bytes += fixedHead
        bytes += "\(timestamp)\r\nOK-ACCESS-SIGN: \(sign)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8
        started = monotonicNanos()
        try connection.send(bytes)
    }
}
