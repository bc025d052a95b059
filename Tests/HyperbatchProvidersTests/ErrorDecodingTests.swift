import Foundation
import HyperbatchJobs
import Testing

@testable import HyperbatchProviders

@Suite struct ErrorDecodingTests {
    @Test func openAIShapeKeepsEveryField() {
        let error = ProviderErrorDecoding.decode(
            status: 400,
            body: Array(#"{"error":{"message":"Cannot find file file-Xu.","type":"invalid_request_error","param":"file_id","code":null}}"#.utf8))
        #expect(error == ProviderError(status: 400, type: "invalid_request_error", message: "Cannot find file file-Xu.", param: "file_id"))
        #expect(!error.isRetryable)
    }

    @Test func anthropicShape() {
        let error = ProviderErrorDecoding.decode(
            status: 529, body: Array(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.utf8))
        #expect(error == ProviderError(status: 529, type: "overloaded_error", message: "Overloaded"))
        #expect(error.isRetryable)
    }

    @Test func numericCodeAndNonJSONBody() {
        let numeric = ProviderErrorDecoding.decode(status: 429, body: Array(#"{"error":{"message":"slow down","type":"rate_limit_error","code":429}}"#.utf8))
        #expect(numeric.code == "429")
        let html = ProviderErrorDecoding.decode(status: 502, body: Array("<html>bad gateway</html>".utf8))
        #expect(html == ProviderError(status: 502, type: "api_error", message: "<html>bad gateway</html>"))
        let empty = ProviderErrorDecoding.decode(status: 404, body: [])
        #expect(empty == ProviderError(status: 404, type: "http_error", message: "HTTP 404"))
    }
}
