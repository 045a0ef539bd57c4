import Foundation
import HTTPTypes
import InternalAPI
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `GET/PUT /api/admin/tenants/{id}/agent-config` and chat's `GET /internal/agent-configs/{id}`,
/// through tenancy's router against its real database.
@Suite("tenancy agent configuration")
struct AgentConfigTests {
    static func path(_ tenant: UUID) -> String { "/api/admin/tenants/\(tenant.uuidString.lowercased())/agent-config" }

    /// Everything stored about the tenant's agent, and its onboarding step.
    static func snapshot(_ harness: TenancyRouterHarness, _ tenant: UUID) async throws -> String {
        let agent = try await harness.value("SELECT row_to_json(a)::text FROM agent_configs a WHERE tenant_id = \(tenant)", as: String.self)
        let step = try await harness.value("SELECT step_agent_configured FROM onboarding_progress WHERE tenant_id = \(tenant)", as: Bool.self)
        return "\(agent ?? "-") step=\(step.map(String.init) ?? "-")"
    }

    /// What JSON Schema's `\s` (ECMA-262) calls white space is what is trimmed: U+0085 is text, U+FEFF blank.
    @Test func blankMeansWhatTheSchemaSays() {
        var rules = FieldRules()
        #expect(rules.text("\u{85}", "f", max: 5) == "\u{85}")
        #expect(rules.text(" \u{FEFF}\u{3000}x\u{2028}", "f", max: 5) == "x")
        #expect(rules.text("\u{FEFF}\u{A0}", "f", max: 5) == nil)
        #expect(rules.problems["f"] == ["must not be blank"])
    }

    @Test func readsTheDefaultsAndOnlyForItsManagers() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let other = try await harness.tenant("Other")
            for role in [Role.admin, .owner] {
                let answer = try await harness.send(.get, Self.path(tenant), token: try await harness.token(tenant, role))
                #expect(answer.status == 200)
                let agent = try answer.json(AgentConfiguration.self)
                #expect(agent.tenantId == tenant.uuidString.lowercased())
                #expect(agent.agentName == "Assistant")
                #expect(agent.tone == .friendly)
                #expect(agent.temperature == 0.7)
                #expect(agent.maxTokens == 500)
                #expect(agent.model == "gpt-4o-mini")
                #expect(agent.storeContext.isEmpty)
                #expect(agent.guardrailConfig == .init(piiRedaction: true, blockedTerms: []))
                let keys = Set(try answer.object().keys)
                #expect(keys == ["tenant_id", "agent_name", "tone", "greeting_message", "temperature", "max_tokens", "model",
                                 "store_context", "guardrail_config", "updated_at"])
            }
            // A super_admin (of the platform's own directory entry) manages any tenant.
            #expect(try await harness.send(.get, Self.path(tenant), token: try await harness.token(UUID(), .superAdmin)).status == 200)
            let user = try await harness.send(.get, Self.path(tenant), token: try await harness.token(tenant, .user))
            #expect(user.status == 403)
            #expect(try user.error().code == "ROLE_NOT_ALLOWED")
            // Another tenant's admin cannot tell the tenant exists.
            let foreign = try await harness.send(.get, Self.path(tenant), token: try await harness.token(other, .owner))
            #expect(foreign.status == 404)
            #expect(try foreign.error().code == "TENANT_NOT_FOUND")
            let root = try await harness.token(UUID(), .superAdmin)
            #expect(try await harness.send(.get, Self.path(UUID()), token: root).status == 404)
            #expect(try await harness.send(.get, "/api/admin/tenants/not-a-uuid/agent-config", token: root).status == 404)
            let anonymous = try await harness.send(.get, Self.path(tenant))
            #expect(anonymous.status == 401)
            // A tenant still being registered does not exist yet.
            let half = try await harness.tenant("Half", status: "provisioning")
            #expect(try await harness.send(.get, Self.path(half), token: root).status == 404)
        }
    }

    @Test func aPartialUpdateChangesOnlyItsFieldsAndMarksTheStep() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let token = try await harness.token(tenant, .admin)
            let answer = try await harness.send(
                .put, Self.path(tenant), token: token,
                raw: #"{"agent_name": "  Sunny  ", "temperature": 0.3, "guardrail_config": {"pii_redaction": false, "blocked_terms": [" refund ", "Refund", "lawsuit"]}, "store_context": {"opening_hours": "9-17", "shops": 3}}"#
            )
            #expect(answer.status == 200)
            let agent = try answer.json(AgentConfiguration.self)
            #expect(agent.agentName == "Sunny")
            #expect(agent.temperature == 0.3)
            #expect(agent.guardrailConfig == .init(piiRedaction: false, blockedTerms: ["refund", "lawsuit"]))
            #expect(agent.storeContext == ["opening_hours": .string("9-17"), "shops": .integer(3)])
            // Untouched fields keep their values.
            #expect(agent.tone == .friendly)
            #expect(agent.maxTokens == 500)
            #expect(agent.greetingMessage == "Hi! I'm the virtual assistant of Acme.")
            #expect(try await harness.value("SELECT agent_name FROM agent_configs WHERE tenant_id = \(tenant)", as: String.self) == "Sunny")
            #expect(try await harness.value("SELECT blocked_terms FROM agent_configs WHERE tenant_id = \(tenant)", as: [String].self) == ["refund", "lawsuit"])
            #expect(try await harness.value("SELECT step_agent_configured FROM onboarding_progress WHERE tenant_id = \(tenant)", as: Bool.self) == true)

            // A second partial update: tone, greeting and max_tokens, `null` leaving a field alone.
            let second = try await harness.send(
                .put, Self.path(tenant), token: token,
                raw: #"{"tone": "formal", "greeting_message": "Good day.", "max_tokens": 2000, "agent_name": null}"#
            )
            #expect(second.status == 200)
            let updated = try second.json(AgentConfiguration.self)
            #expect(updated.tone == .formal)
            #expect(updated.greetingMessage == "Good day.")
            #expect(updated.maxTokens == 2000)
            #expect(updated.agentName == "Sunny")
            #expect(updated.guardrailConfig.blockedTerms == ["refund", "lawsuit"])
            #expect(updated.updatedAt >= agent.updatedAt)
            // An empty update changes nothing but still counts as configuring the agent.
            let empty = try await harness.send(.put, Self.path(tenant), token: token, raw: "{}")
            #expect(empty.status == 200)
            #expect(try empty.json(AgentConfiguration.self).agentName == "Sunny")
        }
    }

    @Test func everyBadFieldIs422AndChangesNothing() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let token = try await harness.token(tenant, .owner)
            let before = try await Self.snapshot(harness, tenant)
            let cases: [(String, String)] = [
                (#"{"agent_name": "\#(String(repeating: "a", count: 101))"}"#, "agent_name"),
                (#"{"agent_name": "   "}"#, "agent_name"),
                (#"{"agent_name": 5}"#, "agent_name"),
                (#"{"agent_name": "a\u0000b"}"#, "agent_name"),
                (#"{"tone": "angry"}"#, "tone"),
                (#"{"tone": "Friendly"}"#, "tone"),
                (#"{"greeting_message": ""}"#, "greeting_message"),
                (#"{"greeting_message": "\#(String(repeating: "g", count: 1001))"}"#, "greeting_message"),
                (#"{"temperature": 0.29}"#, "temperature"),
                (#"{"temperature": 1.01}"#, "temperature"),
                (#"{"temperature": "0.5"}"#, "temperature"),
                (#"{"max_tokens": 49}"#, "max_tokens"),
                (#"{"max_tokens": 2001}"#, "max_tokens"),
                (#"{"max_tokens": 100.5}"#, "max_tokens"),
                (#"{"max_tokens": true}"#, "max_tokens"),
                (#"{"model": "gpt 4!"}"#, "model"),
                (#"{"model": ""}"#, "model"),
                (#"{"store_context": [1, 2]}"#, "store_context"),
                (#"{"store_context": "text"}"#, "store_context"),
                (#"{"store_context": {"blob": "\#(String(repeating: "x", count: 1001))"}}"#, "store_context.blob"),
                (#"{"store_context": {"nested": {"a": 1}}}"#, "store_context.nested"),
                (#"{"store_context": {"list": [1]}}"#, "store_context.list"),
                (#"{"store_context": {"": 1}}"#, "store_context"),
                (#"{"store_context": {\#((0..<51).map { "\"k\($0)\": 1" }.joined(separator: ","))}}"#, "store_context"),
                (#"{"guardrail_config": {"pii_redaction": "yes", "blocked_terms": []}}"#, "guardrail_config.pii_redaction"),
                (#"{"guardrail_config": {"blocked_terms": []}}"#, "guardrail_config.pii_redaction"),
                (#"{"guardrail_config": {"pii_redaction": true}}"#, "guardrail_config.blocked_terms"),
                (#"{"guardrail_config": {"pii_redaction": true, "blocked_terms": "refund"}}"#, "guardrail_config.blocked_terms"),
                (#"{"guardrail_config": {"pii_redaction": true, "blocked_terms": ["ok", "  "]}}"#, "guardrail_config.blocked_terms.1"),
                (#"{"guardrail_config": {"pii_redaction": true, "blocked_terms": ["\#(String(repeating: "t", count: 101))"]}}"#, "guardrail_config.blocked_terms.0"),
                (#"{"guardrail_config": {"pii_redaction": true, "blocked_terms": [\#((0..<201).map { "\"t\($0)\"" }.joined(separator: ","))]}}"#, "guardrail_config.blocked_terms"),
                (#"{"guardrail_config": {"pii_redaction": true, "blocked_terms": [7]}}"#, "guardrail_config.blocked_terms.0"),
                (#"{"guardrail_config": "on"}"#, "guardrail_config"),
            ]
            for (body, field) in cases {
                let answer = try await harness.send(.put, Self.path(tenant), token: token, raw: body)
                #expect(answer.status == 422, "\(body.prefix(80))")
                let error = try answer.error()
                #expect(error.code == "VALIDATION_ERROR")
                #expect(error.fields?[field] != nil, "\(body.prefix(80)): \(error.fields ?? [:])")
            }
            // Several bad fields at once are all named, and a good field beside them is not applied.
            let several = try await harness.send(.put, Self.path(tenant), token: token, raw: #"{"tone": "x", "temperature": 5, "agent_name": "Fine"}"#)
            #expect(Set(try several.error().fields?.keys.map { $0 } ?? []) == ["tone", "temperature"])
            for (body, status) in [("{\"agent_name\": ", 400), ("[]", 400), ("null", 400), ("", 400), ("{\"tone\": \"formal\", \"tone\": \"casual\"}", 400)] {
                let answer = try await harness.send(.put, Self.path(tenant), token: token, raw: body)
                #expect(answer.status == status, "\(body)")
            }
            let huge = try await harness.send(
                .put, Self.path(tenant), token: token, raw: #"{"greeting_message": "\#(String(repeating: "h", count: 1_100_000))"}"#
            )
            #expect(huge.status == 413)
            #expect(try await Self.snapshot(harness, tenant) == before)
        }
    }

    @Test func onlySuperAdminsChooseTheModel() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let before = try await Self.snapshot(harness, tenant)
            for role in [Role.admin, .owner] {
                let refused = try await harness.send(
                    .put, Self.path(tenant), token: try await harness.token(tenant, role), json: ["model": "gpt-4o", "agent_name": "Changed"]
                )
                #expect(refused.status == 403)
                #expect(try refused.error().code == "ROLE_NOT_ALLOWED")
            }
            #expect(try await Self.snapshot(harness, tenant) == before)
            // Sending the current model back (a form that posts every field) is fine.
            let same = try await harness.send(
                .put, Self.path(tenant), token: try await harness.token(tenant, .admin), json: ["model": "gpt-4o-mini", "agent_name": "Changed"]
            )
            #expect(same.status == 200)
            #expect(try same.json(AgentConfiguration.self).agentName == "Changed")
            let root = try await harness.send(.put, Self.path(tenant), token: try await harness.token(UUID(), .superAdmin), json: ["model": "gpt-4o"])
            #expect(root.status == 200)
            #expect(try root.json(AgentConfiguration.self).model == "gpt-4o")
            #expect(try await harness.value("SELECT model FROM agent_configs WHERE tenant_id = \(tenant)", as: String.self) == "gpt-4o")
        }
    }

    @Test func anotherTenantsIdAndLesserRolesChangeNothing() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let other = try await harness.tenant("Other")
            let before = try await Self.snapshot(harness, tenant)
            let foreign = try await harness.send(.put, Self.path(tenant), token: try await harness.token(other, .owner), json: ["agent_name": "Hijacked"])
            #expect(foreign.status == 404)
            #expect(try foreign.error().code == "TENANT_NOT_FOUND")
            let user = try await harness.send(.put, Self.path(tenant), token: try await harness.token(tenant, .user), json: ["agent_name": "Hijacked"])
            #expect(user.status == 403)
            #expect(try user.error().code == "ROLE_NOT_ALLOWED")
            // The role is checked before the body is read.
            #expect(try await harness.send(.put, Self.path(tenant), token: try await harness.token(tenant, .user), raw: "{").status == 403)
            #expect(try await harness.send(.put, Self.path(tenant), json: ["agent_name": "Hijacked"]).status == 401)
            let unknown = try await harness.send(.put, Self.path(UUID()), token: try await harness.token(UUID(), .superAdmin), json: ["agent_name": "X"])
            #expect(unknown.status == 404)
            #expect(try await Self.snapshot(harness, tenant) == before)
            #expect(try await harness.send(.delete, Self.path(tenant), token: try await harness.token(tenant, .owner)).status == 405)
        }
    }

    @Test func chatReadsItThroughTheInternalRoute() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let path = "/internal/agent-configs/\(tenant.uuidString.lowercased())"
            func call(as caller: ServiceName, _ path: String) async throws -> TenancyRouterHarness.Answer {
                let headers = try await TestStack.callerHeaders(as: caller, to: .tenancy, .get, "http://tenancy" + path)
                return try await harness.send(.get, path, headers: HTTPFields(headers.map { HTTPField(name: .init($0.key)!, value: $0.value) }))
            }
            let chat = try await call(as: .chat, path)
            #expect(chat.status == 200)
            #expect(try chat.json(AgentConfiguration.self).greetingMessage == "Hi! I'm the virtual assistant of Acme.")
            #expect(try await call(as: .auth, path).status == 401)
            #expect(try await call(as: .gateway, path).status == 401)
            #expect(try await harness.send(.get, path).status == 401)
            #expect(try await call(as: .chat, "/internal/agent-configs/\(UUID().uuidString.lowercased())").status == 404)
        }
    }
}
