import Foundation
import ServiceCore
import Testing

@Suite("JSON shape check")
struct JSONShapeCheckTests {
    static func problem(_ json: String) -> JSONShapeCheck.Problem? {
        do {
            try JSONShapeCheck.check(Array(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test func duplicateKeysAreFoundAtAnyDepthAndThroughEscapes() {
        #expect(Self.problem(#"{"email":"a@x.io","email":"b@x.io"}"#) == .duplicateKey("email"))
        #expect(Self.problem(#"{"a":{"b":1,"b":2}}"#) == .duplicateKey("b"))
        #expect(Self.problem(#"{"email":1,"\u0065mail":2}"#) == .duplicateKey("email"))
        #expect(Self.problem(#"{"\ud83d\ude00":1,"😀":2}"#) == .duplicateKey("😀"))
        #expect(Self.problem(#"[{"a":1},{"a":[{"x":1,"x":2}]}]"#) == .duplicateKey("x"))
    }

    @Test func sameKeysInSiblingObjectsAndKeyLikeValuesAreFine() {
        #expect(Self.problem(#"{"a":{"id":1},"b":{"id":2},"messages":[{"role":"user"},{"role":"assistant"}]}"#) == nil)
        #expect(Self.problem(#"{"a":"a","b":"a","c":["a","a"],"d":"\"a\",\"a\":"}"#) == nil)
        #expect(Self.problem(#"{"a\"":1,"a":2}"#) == nil)
        #expect(Self.problem("") == nil)
        #expect(Self.problem("not json at all {") == nil)
    }

    @Test func nulIsFoundOnlyInDecodedFields() throws {
        struct Message: Decodable { var role: String; var content: String? }
        struct Chat: Decodable { var messages: [Message]; var accountName: String? }
        let decoder = JSONCoding.decoder
        func field(_ json: String) throws -> String? {
            DecodedNULCheck.field(in: try decoder.decode(Chat.self, from: Data(json.utf8)))
        }
        #expect(try field(#"{"messages":[{"role":"user","content":"hi\u0000"}]}"#) == "content")
        #expect(try field(#"{"messages":[],"account_name":"a\u0000b"}"#) == "account_name")
        #expect(try field(#"{"messages":[{"role":"user"}],"unknown\u0000":"x\u0000","other":{"k\u0000":1}}"#) == nil)
        #expect(try field(#"{"messages":[{"role":"user","content":"\\u0000"}]}"#) == nil)
    }

    @Test func nestingIsBounded() {
        let ok = String(repeating: "[", count: JSONShapeCheck.maxDepth) + String(repeating: "]", count: JSONShapeCheck.maxDepth)
        #expect(Self.problem(ok) == nil)
        #expect(Self.problem("[" + ok + "]") == .tooDeep)
        #expect(Self.problem(String(repeating: #"{"a":"#, count: 10_000)) == .tooDeep)
    }
}
