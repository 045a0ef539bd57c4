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

    @Test func nulCharactersAreFoundWithTheirField() {
        #expect(Self.problem(#"{"email":"a\u0000b"}"#) == .nulCharacter(field: "email"))
        #expect(Self.problem(#"{"messages":[{"role":"user","content":"hi\u0000"}]}"#) == .nulCharacter(field: "content"))
        #expect(Self.problem(#"["\u0000"]"#) == .nulCharacter(field: nil))
        #expect(Self.problem(#"{"a":"\\u0000"}"#) == nil)
    }

    @Test func nestingIsBounded() {
        let ok = String(repeating: "[", count: JSONShapeCheck.maxDepth) + String(repeating: "]", count: JSONShapeCheck.maxDepth)
        #expect(Self.problem(ok) == nil)
        #expect(Self.problem("[" + ok + "]") == .tooDeep)
        #expect(Self.problem(String(repeating: #"{"a":"#, count: 10_000)) == .tooDeep)
    }
}
