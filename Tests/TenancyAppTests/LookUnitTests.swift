import Foundation
import Testing

@testable import TenancyApp

/// The pure parts of themes and branding: image headers, the CSS rules, entity tags.
@Suite("tenancy look rules")
struct LookUnitTests {
    @Test func imageHeadersGiveFormatAndSize() throws {
        #expect(try ImageInspector.inspect(TestImages.png1x1) == InspectedImage(format: .png, width: 1, height: 1))
        #expect(try ImageInspector.inspect(TestImages.gif1x1) == InspectedImage(format: .gif, width: 1, height: 1))
        #expect(try ImageInspector.inspect(TestImages.jpeg(width: 33, height: 44)) == InspectedImage(format: .jpeg, width: 33, height: 44))
        #expect(try ImageInspector.inspect(TestImages.webp(width: 200, height: 100)) == InspectedImage(format: .webp, width: 200, height: 100))
        #expect(try ImageInspector.inspect(TestImages.webpExtended(width: 4096, height: 2)) == InspectedImage(format: .webp, width: 4096, height: 2))
        #expect(try ImageInspector.inspect(TestImages.ico(png: TestImages.png(width: 48, height: 48))) == InspectedImage(format: .ico, width: 48, height: 48))
    }

    @Test func badImagesNameTheirProblem() {
        #expect(throws: ImageProblem.empty) { try ImageInspector.inspect([]) }
        #expect(throws: ImageProblem.svg) { try ImageInspector.inspect(Array("\u{FEFF}  <svg></svg>".utf8)) }
        #expect(throws: ImageProblem.unrecognised) { try ImageInspector.inspect(Array("hello".utf8)) }
        #expect(throws: ImageProblem.truncated(.png)) { try ImageInspector.inspect(Array(TestImages.png1x1.prefix(30))) }
        #expect(throws: ImageProblem.dimensions(width: 100_000, height: 100_000)) {
            try ImageInspector.inspect(TestImages.png(width: 100_000, height: 100_000))
        }
        // A small logical screen holding a huge frame.
        var gif = TestImages.gif(width: 10, height: 10)
        gif.replaceSubrange(18..<22, with: TestImages.le16(60_000) + TestImages.le16(60_000))
        #expect(throws: ImageProblem.dimensions(width: 60_000, height: 60_000)) { try ImageInspector.inspect(gif) }
        // 4096 × 4096 is the largest accepted.
        #expect(throws: ImageProblem.dimensions(width: 4096, height: 4097)) { try ImageInspector.inspect(TestImages.png(width: 4096, height: 4097)) }
    }

    @Test func cssIsNormalisedBeforeItIsJudged() {
        #expect(CustomCSSPolicy.normalised("\\75 rl(") == "url(")
        #expect(CustomCSSPolicy.normalised("u/**/rl(") == "url(")
        #expect(CustomCSSPolicy.normalised("\\55RL(") == "url(")
        #expect(CustomCSSPolicy.normalised("a /* x") == "a ")
        #expect(CustomCSSPolicy.problems("a { color: red }").isEmpty)
        #expect(CustomCSSPolicy.problems("a { color: red } /* unterminated @import 'x'").isEmpty)
        #expect(!CustomCSSPolicy.problems("a { background: url(data:image/png,x) url(https://x) }").isEmpty)
        #expect(!CustomCSSPolicy.problems("a\u{0}b").isEmpty)
    }

    @Test func entityTagsCompareWeakly() {
        let tag = EntityTag(opaque: "abc")
        #expect(tag.matches(ifNoneMatch: "\"abc\""))
        #expect(tag.matches(ifNoneMatch: "W/\"abc\""))
        #expect(tag.matches(ifNoneMatch: " \"x\" , W/\"abc\" "))
        #expect(tag.matches(ifNoneMatch: "*"))
        #expect(!tag.matches(ifNoneMatch: "\"abcd\""))
        #expect(!tag.matches(ifNoneMatch: "abc"))
        #expect(!tag.matches(ifNoneMatch: "\"abc"))
        #expect(!tag.matches(ifNoneMatch: nil))
        #expect(EntityTag.parseList("\"a,b\", W/\"c\"") == ["a,b", "c"])
        #expect(EntityTag(of: [1, 2, 3]) == EntityTag(of: [1, 2, 3]))
        #expect(EntityTag(of: [1, 2, 3]) != EntityTag(of: [1, 2, 4]))
    }
}
