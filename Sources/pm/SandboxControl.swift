import ArgumentParser
import Foundation
import MarginEngine
import MarketFeedHTTP
import Sandbox

/// `pm sandbox …`: the sandbox control endpoints of a running `pm serve` (loopback, admin token).
struct SandboxControl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox", abstract: "Control a running sandbox: deposits, keys, PM acknowledgement, market moves.",
        subcommands: [Deposit.self, Acknowledge.self, CreateKey.self, Shock.self, Step.self, State.self])

    struct Connection: ParsableArguments {
        @Option(help: "The sandbox's base URL.") var url = "http://127.0.0.1:8080"
        @OptionGroup var database: DatabaseOption

        func call(_ method: String, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
            let token: String
            do { token = try Sandbox.adminToken(path: database.filesPrefix + ".admin-token") } catch {
                throw ValidationError("cannot read the admin token \(database.filesPrefix).admin-token: \(error)")
            }
            guard URL(string: url + path)?.host != nil else { throw ValidationError("bad --url \(url)") }
            let answer: [UInt8]
            do {
                answer = try await HTTPRequest.send(
                    method, url + path, headers: [("X-Sandbox-Admin-Token", token), ("Content-Type", "application/json")],
                    body: body.map { Array(JSONWriter.serialize($0).utf8) }
                ).body
            } catch {
                FileHandle.standardError.write(Data("pm: error: no answer from \(url)\(path): \(error)\n".utf8))
                throw ExitCode.failure
            }
            let json = try JSONParser.parse(answer)
            guard case .object(let envelope) = json, case .string(let code)? = envelope["code"] else {
                throw ValidationError("unexpected answer")
            }
            guard code == "0" else {
                let message =
                    envelope["msg"].flatMap { value -> String? in if case .string(let text) = value { return text } else { return nil } }
                    ?? ""
                FileHandle.standardError.write(Data("pm: error: \(code) \(message)\n".utf8))
                throw ExitCode.failure
            }
            return envelope["data"] ?? .array([])
        }

        func printResult(_ value: JSONValue) { print(JSONWriter.serialize(value, pretty: true)) }
    }

    struct Deposit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deposit test funds into an account.")
        @OptionGroup var connection: Connection
        @Option var uid: String
        @Option var ccy: String
        @Option var amt: String
        func run() async throws {
            connection.printResult(
                try await connection.call(
                    "POST", "/api/v5/sandbox/deposit",
                    body: .object([
                        ("uid", .string(uid)), ("ccy", .string(ccy)), ("amt", .string(amt)),
                    ])))
        }
    }

    struct Acknowledge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record an account's portfolio-margin risk acknowledgement.")
        @OptionGroup var connection: Connection
        @Option var uid: String
        func run() async throws {
            connection.printResult(try await connection.call("POST", "/api/v5/sandbox/acknowledge", body: .object([("uid", .string(uid))])))
        }
    }

    struct CreateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "key", abstract: "Create another API key for an account.")
        @OptionGroup var connection: Connection
        @Option var uid: String
        @Option(help: "read, trade or read,trade") var perm = "read,trade"
        func run() async throws {
            connection.printResult(
                try await connection.call(
                    "POST", "/api/v5/sandbox/key/create",
                    body: .object([
                        ("uid", .string(uid)), ("perm", .string(perm)),
                    ])))
        }
    }

    struct Shock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move coin indices (and the clock), then re-margin and liquidate.")
        @OptionGroup var connection: Connection
        @Option(name: .customLong("move"), help: ArgumentHelp("A coin's move, e.g. BTC=-0.1 (repeatable).", valueName: "COIN=FRACTION"))
        var moves: [String] = []
        @Option(help: "Market seconds to advance.") var advance: Double = 0
        func run() async throws {
            var members: [(String, JSONValue)] = []
            for move in moves {
                let parts = move.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, Double(parts[1]) != nil else { throw ValidationError("--move \(move): expected COIN=FRACTION") }
                members.append((parts[0], .string(parts[1])))
            }
            connection.printResult(
                try await connection.call(
                    "POST", "/api/v5/sandbox/market/shock",
                    body: .object([
                        ("moves", .object(members)), ("advanceSeconds", .decimal(advance)),
                    ])))
        }
    }

    struct Step: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Advance the simulated market by one tick now.")
        @OptionGroup var connection: Connection
        func run() async throws {
            connection.printResult(try await connection.call("POST", "/api/v5/sandbox/market/step", body: .object([])))
        }
    }

    struct State: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accounts, market time and insurance fund of a running sandbox.")
        @OptionGroup var connection: Connection
        func run() async throws { connection.printResult(try await connection.call("GET", "/api/v5/sandbox/state")) }
    }
}
