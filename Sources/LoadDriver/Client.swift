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
            prefix = "\(fields.tm_year + 1900)-\(Self.pad(fields.tm_mon + 1))-\(Self.pad(fields.tm_mday))T"
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
/// looping "place a resting limit buy, cancel it" until the end time. A state machine driven by the one
/// poll() loop that serves every client: no threads, no locks, and answers that arrive together are handled
/// in one wakeup.
final class Client {
    private enum State {
        case placing(clOrdId: String)
        case cancelling(ordId: String)
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
        fixedHead = Array(" HTTP/1.1\r\nHost: \(config.host):\(config.port)\r\nContent-Type: application/json\r\nOK-ACCESS-KEY: \(account.apiKey)\r\nOK-ACCESS-PASSPHRASE: \(account.passphrase)\r\nOK-ACCESS-TIMESTAMP: ".utf8)
    }

    /// Starts the next cycle, or ends the client once the end time has come.
    func nextCycle() throws {
        guard wallClock() < config.endAt else {
            state = .done
            return
        }
        sequence += 1
        let clOrdId = "L\(account.index)n\(sequence)"
        state = .placing(clOrdId: clOrdId)
        try send(path: "/api/v5/trade/order", body: #"{"instId":"\#(config.instId)","tdMode":"cross","side":"buy","ordType":"limit","px":"\#(config.price)","sz":"\#(config.size)","clOrdId":"\#(clOrdId)"}"#)
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

    /// The answer to the request in flight: a refused placement skips the cancel; every outcome is recorded.
    private func advance(status: Int, body: [UInt8], micros: Double) throws {
        switch state {
        case .placing(let clOrdId):
            guard let placed = check(.place, status: status, body: body) else { return try nextCycle() }
            guard let ordId = placed.ordId else {
                recorder.error("place:no-ordId", "\(placed)")
                return try nextCycle()
            }
            recorder.succeeded(.place, micros: micros)
            acked.append(ordId)
            if placed.clOrdId != clOrdId {
                recorder.error("place:clOrdId-mismatch", "\(placed)")
            }
            state = .cancelling(ordId: ordId)
            try send(path: "/api/v5/trade/cancel-order", body: #"{"instId":"\#(config.instId)","ordId":"\#(ordId)"}"#)
        case .cancelling(let ordId):
            if let answered = check(.cancel, status: status, body: body) {
                if answered.ordId == ordId {
                    recorder.succeeded(.cancel, micros: micros)
                    cancelled += 1
                } else {
                    recorder.error("cancel:ordId-mismatch", "cancelled \(answered.ordId ?? "None") instead of \(ordId)")
                }
            }
            try nextCycle()
        case .done:
            throw TransportError(description: "an answer nothing was asked for")
        }
    }

    /// The answer's first data item when it answered code "0" and sCode "0" without a 5xx; otherwise nil,
    /// after recording the error under loadgen.py's key.
    private func check(_ operation: Operation, status: Int, body: [UInt8]) -> Answer.Item? {
        let op = operation.rawValue
        guard let answer = Answer(json: body) else {
            recorder.error("\(op):HTTP\(status):None/-", "unparsable answer: " + String(decoding: body.prefix(300), as: UTF8.self))
            return nil
        }
        let item = answer.item
        guard status < 500, answer.code == "0", item.sCode == "0" else {
            let message = item.sMsg.flatMap { $0.isEmpty ? nil : $0 } ?? answer.msg ?? ""
            recorder.error("\(op):HTTP\(status):\(answer.code ?? "None")/\(item.sCode ?? "-")", message)
            return nil
        }
        return item
    }

    /// Signs and sends one POST: OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + "POST" + path + body)).
    private func send(path: String, body: String) throws {
        let timestamp = timestamps.now()
        var mac = keyed
        mac.update(data: Array((timestamp + "POST" + path + body).utf8))
        let sign = Data(mac.finalize()).base64EncodedString()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fixedHead.count + 256)
        bytes += "POST ".utf8
        bytes += path.utf8
        bytes += fixedHead
        bytes += "\(timestamp)\r\nOK-ACCESS-SIGN: \(sign)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8
        started = monotonicNanos()
        try connection.send(bytes)
    }
}
