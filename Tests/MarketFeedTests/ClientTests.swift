import Foundation
import MarginEngine
import MarketFeedHTTP
import Synchronization
import Testing

@testable import MarketFeed

/// The client's pieces that need no server: signing, the envelope, the pacing, the base URL.
struct ClientTests {
    @Test func signatureIsOKXsHMACOverTimestampMethodPathAndBody() {
        // Reference value: Python's hmac/hashlib/base64 over the same bytes (docs/methodology/06-sandbox-api.md §2).
        let credentials = OKXCredentials(apiKey: "k", secretKey: "22582BD0CFF14C41EDBF1AB98506286D", passphrase: "p")
        let headers = Dictionary(
            uniqueKeysWithValues: credentials.headers(
                method: "GET", requestPath: "/api/v5/account/balance?ccy=BTC", timestamp: "2020-12-08T09:08:57.715Z"))
        #expect(headers["OK-ACCESS-SIGN"] == "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=")
        #expect(headers["OK-ACCESS-TIMESTAMP"] == "2020-12-08T09:08:57.715Z")
        #expect(headers["OK-ACCESS-KEY"] == "k")
        #expect(headers["OK-ACCESS-PASSPHRASE"] == "p")
    }

    @Test func timestampIsISO8601WithMilliseconds() {
        #expect(OKXCredentials.timestamp(Date(timeIntervalSince1970: 1_607_418_537.715)) == "2020-12-08T09:08:57.715Z")
        #expect(OKXCredentials.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    @Test func credentialsNeverPrintTheSecretOrPassphrase() {
        let text = "\(OKXCredentials(apiKey: "abcdefgh", secretKey: "TOPSECRET", passphrase: "PASSPHRASE1"))"
        #expect(!text.contains("TOPSECRET") && !text.contains("PASSPHRASE1") && !text.contains("abcdefgh"))
    }

    @Test func aRejectionKeepsOKXsCodeAndMessage() {
        let body = Array(#"{"code":"50113","msg":"Invalid Sign","data":[]}"#.utf8)
        #expect(throws: OKXFeedError.rejected(endpoint: "GET /x", httpStatus: 401, code: "50113", message: "Invalid Sign")) {
            try OKXEnvelope.data(of: body, status: 401, endpoint: "GET /x")
        }
        let rateLimited = OKXFeedError.rejected(endpoint: "GET /x", httpStatus: 429, code: "50011", message: "Too Many Requests")
        #expect(rateLimited.isRateLimit && rateLimited.isUnanswered)
        #expect(!OKXFeedError.rejected(endpoint: "GET /x", httpStatus: 200, code: "51001", message: "").isUnanswered)
    }

    @Test(arguments: [#"<html>502 Bad Gateway</html>"#, #"{"data":[]}"#, #"{"code":"0","msg":"","data":{}}"#])
    func anAnswerThatIsNotAnEnvelopeIsNamed(body: String) {
        #expect(throws: OKXFeedError.self) { try OKXEnvelope.data(of: Array(body.utf8), status: 200, endpoint: "GET /x") }
    }

    @Test(arguments: ["https://www.okx.com", "https://www.okx.com/", "https://www.okx.com/api/v5", "http://127.0.0.1:8080"])
    func baseURLsAreNormalised(url: String) throws {
        let client = try OKXClient(baseURL: url)
        #expect(!client.baseURL.hasSuffix("/") && !client.baseURL.hasSuffix("/api/v5"))
    }

    @Test(arguments: ["ftp://www.okx.com", "www.okx.com", ""])
    func anythingButHTTPIsRefused(url: String) {
        #expect(throws: OKXFeedError.invalidBaseURL(url)) { try OKXClient(baseURL: url) }
    }

    @Test func theQueryIsPercentEncodedAsSignedAndSent() {
        #expect(OKXEnvelope.target("/api/v5/x", [("instId", "BTC-USD"), ("a", "b c/d")]) == "/api/v5/x?instId=BTC-USD&a=b%20c%2Fd")
        #expect(OKXEnvelope.target("/api/v5/x", []) == "/api/v5/x")
    }

    @Test func thePacerWaitsForTheOldestRequestToLeaveTheWindow() async throws {
        let clock = Mutex<Double>(100)
        let slept = Mutex<[Double]>([])
        let pacer = RequestPacer(
            limits: ["/a": RateLimit(requests: 2, windowSeconds: 2)], now: { clock.withLock { $0 } },
            sleep: { seconds in
                slept.withLock { $0.append(seconds) }
                clock.withLock { $0 += seconds }
            })
        #expect(try await pacer.take("/a") == 0)
        clock.withLock { $0 += 0.5 }
        #expect(try await pacer.take("/a") == 0)
        // Third within the window: waits until the first (at 100) is 2 s old.
        let waited = try await pacer.take("/a")
        #expect(abs(waited - 1.5) < 1e-9)
        // Another endpoint has its own budget.
        #expect(try await pacer.take("/b") == 0)
        #expect(slept.withLock { $0 }.count == 1)
    }

    @Test func okxLimitsAreTheDocumentedOnes() {
        #expect(RateLimit.okx["/api/v5/public/mark-price"] == RateLimit(requests: 10, windowSeconds: 2))
        #expect(RateLimit.okx["/api/v5/public/instruments"] == RateLimit(requests: 20, windowSeconds: 2))
        #expect(RateLimit.okx["/api/v5/system/status"] == RateLimit(requests: 1, windowSeconds: 5))
    }
}
