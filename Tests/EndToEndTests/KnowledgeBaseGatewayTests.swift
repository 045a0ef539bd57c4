import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// The knowledge base across the services, through the gateway: an owner uploads a document, chat's
/// worker processes it into chunks, and chat's event completes tenancy's onboarding step
/// `step_knowledge_base_uploaded`, which the owner then reads from tenancy.
@Suite("knowledge base through the gateway")
struct KnowledgeBaseGatewayTests {
    struct FileView: Decodable { var id: String; var processingStatus: String }
    struct StatusView: Decodable { var status: String; var chunkCount: Int; var error: String? }

    @Test func uploadIsProcessedAndCompletesTheOnboardingStep() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway)
            let auth = Fixtures.bearer(owner.accessToken)
            let boundary = "kb-\(UUID().uuidString)"
            let text = String(repeating: "Our bakery delivers fresh bread every morning before eight. ", count: 40)
            let body = "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"about.md\"\r\nContent-Type: text/markdown\r\n\r\n"
                + text + "\r\n--\(boundary)--\r\n"
            let uploaded = try await TestHTTP.send(
                .POST, gateway + "/api/knowledge-base/upload", headers: auth.merging(["Content-Type": "multipart/form-data; boundary=\(boundary)"]) { $1 },
                bytes: Array(body.utf8)
            )
            #expect(uploaded.status == 201, "\(uploaded.text)")
            let file = try uploaded.json(FileView.self)
            #expect(file.processingStatus == "pending" || file.processingStatus == "processing" || file.processingStatus == "completed")

            var status = StatusView(status: "pending", chunkCount: 0)
            let processed = try await Polling.within(30) {
                status = try await TestHTTP.send(.GET, gateway + "/api/knowledge-base/files/\(file.id)/status", headers: auth).json(StatusView.self)
                return status.status == "completed"
            }
            #expect(processed != nil, "\(status)")
            #expect(status.chunkCount > 1)
            let chunks = try await TestPostgres.count(
                stack.databases[.chat]!,
                "SELECT count(*)::int FROM knowledge_chunks WHERE document_id = \(UUID(uuidString: file.id)!) AND tenant_id = \(UUID(uuidString: owner.tenantId)!)"
            )
            #expect(chunks == status.chunkCount)

            let stepDone = try await Polling.within(30) {
                let answer = try await TestHTTP.send(.GET, gateway + "/api/onboarding/status", headers: auth)
                guard answer.status == 200, let object = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any] else { return false }
                let progress = object["progress"] as? [String: Any] ?? object
                return progress["step_knowledge_base_uploaded"] as? Bool == true
            }
            #expect(stepDone != nil)
        }
    }
}
