import CCurl
import CCurlShim
import Foundation

/// Which command the last reply of an SMTP conversation answered: what decides whether a refusal
/// is about this mail (permanent when 5xx) or about us and the relay (retried).
enum SMTPStage: String, Sendable {
    /// Connecting, TLS on port 465, or the server's greeting.
    case connection
    case hello
    case startTLS
    case authentication
    /// `MAIL FROM`: the relay's opinion of our sender address.
    case sender
    case recipient
    case data
    /// The end of the message text: the relay's verdict on the message itself.
    case content
}

/// How one SMTP conversation through libcurl ended, with what classifying a failure needs.
struct CurlSMTPOutcome: Sendable {
    var code: CURLcode
    /// The last SMTP reply code as libcurl saw it (0 when none came); `lastReply` is the better witness.
    var replyCode: Int
    /// The last reply line, e.g. `550 5.1.1 <x@example.com>: Recipient address rejected`.
    var lastReply: String?
    var stage: SMTPStage
    /// libcurl's own account of the error, when there is one.
    var curlMessage: String

    var succeeded: Bool { code == CURLE_OK }
}

/// One SMTP conversation on a libcurl easy handle, from connecting to the end of the message,
/// blocking the calling thread (a thread-pool thread: never an event loop) for at most the
/// configuration's timeout. A handle per mail: connections are not kept between mails, which costs
/// a handshake per mail and keeps a handle from ever being shared between threads.
enum CurlSMTPExchange {
    /// libcurl's global set-up, once per process before any handle; thread-safe since 7.84.
    private static let initialised: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    static func send(_ content: [UInt8], to recipient: String, configuration: SMTPMailTransport.Configuration) -> CurlSMTPOutcome {
        let transcript = Transcript(content: content)
        guard initialised, let handle = curl_easy_init() else {
            return transcript.outcome(CURLE_FAILED_INIT, replyCode: 0, curlMessage: "libcurl could not be initialised")
        }
        defer { curl_easy_cleanup(handle) }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        defer { errorBuffer.deallocate() }
        let recipients = curl_slist_append(nil, "<\(recipient)>")
        defer { curl_slist_free_all(recipients) }

        let context = Unmanaged.passUnretained(transcript).toOpaque()
        var failed: CURLcode?
        func check(_ result: Int32) {
            if failed == nil, result != Int32(CURLE_OK.rawValue) { failed = CURLcode(rawValue: UInt32(result)) }
        }
        func set(_ option: CURLoption, _ value: Int) { check(ccurl_setopt_long(handle, Int32(option.rawValue), value)) }
        func set(_ option: CURLoption, _ value: String) { check(ccurl_setopt_string(handle, Int32(option.rawValue), value)) }
        func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) { check(ccurl_setopt_pointer(handle, Int32(option.rawValue), pointer)) }

        let timeout = Int(configuration.timeout.components.seconds * 1_000 + configuration.timeout.components.attoseconds / 1_000_000_000_000_000)
        set(CURLOPT_URL, configuration.url)
        set(CURLOPT_PROTOCOLS_STR, "smtp,smtps")
        // Signals cannot be used for timeouts on a thread among others.
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_TIMEOUT_MS, timeout)
        set(CURLOPT_CONNECTTIMEOUT_MS, timeout)
        switch configuration.security {
        case .starttls: set(CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
        case .tls, .none: break
        }
        if let path = configuration.caBundlePath { set(CURLOPT_CAINFO, path) }
        if let username = configuration.username {
            set(CURLOPT_USERNAME, username)
            set(CURLOPT_PASSWORD, configuration.password ?? "")
        }
        set(CURLOPT_MAIL_FROM, "<\(configuration.from.address)>")
        set(CURLOPT_MAIL_RCPT, pointer: UnsafeMutableRawPointer(recipients))
        set(CURLOPT_UPLOAD, 1)
        set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        set(CURLOPT_READDATA, pointer: context)
        check(ccurl_setopt_read_function(handle) { buffer, size, count, context in
            guard let buffer, let context else { return 0 }
            return Unmanaged<Transcript>.fromOpaque(context).takeUnretainedValue().read(into: buffer, capacity: size * count)
        })
        // The protocol exchange goes to the debug callback, which keeps the stage and the last
        // reply; nothing else of it is kept (commands after AUTH carry credentials).
        set(CURLOPT_VERBOSE, 1)
        set(CURLOPT_DEBUGDATA, pointer: context)
        check(ccurl_setopt_debug_function(handle) { _, type, data, size, context in
            guard let data, let context else { return 0 }
            let text = UnsafeRawBufferPointer(start: data, count: size)
            Unmanaged<Transcript>.fromOpaque(context).takeUnretainedValue().observe(type: type, text)
            return 0
        })
        if let failed {
            return transcript.outcome(failed, replyCode: 0, curlMessage: String(cString: curl_easy_strerror(failed)))
        }

        let code = curl_easy_perform(handle)
        var replyCode = 0
        _ = ccurl_getinfo_long(handle, Int32(CURLINFO_RESPONSE_CODE.rawValue), &replyCode)
        let message = errorBuffer.pointee == 0 ? String(cString: curl_easy_strerror(code)) : String(cString: errorBuffer)
        return transcript.outcome(code, replyCode: replyCode, curlMessage: message)
    }
}

/// The callbacks' side of a conversation: the message being uploaded, and what was seen of the exchange.
private final class Transcript {
    let content: [UInt8]
    var offset = 0
    var stage = SMTPStage.connection
    var lastReply: String?
    /// After a failure libcurl says QUIT before returning; the server's goodbye must not hide the refusal.
    var quitting = false

    init(content: [UInt8]) {
        self.content = content
    }

    func read(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        // libcurl asks for the text only once the server has answered DATA with 354.
        stage = .content
        let count = min(capacity, content.count - offset)
        content.withUnsafeBytes { bytes in
            UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
        }
        offset += count
        return count
    }

    func observe(type: Int32, _ text: UnsafeRawBufferPointer) {
        switch UInt32(type) {
        case CURLINFO_HEADER_IN.rawValue where !quitting:
            let line = String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !line.isEmpty { lastReply = String(line.prefix(300)) }
        case CURLINFO_HEADER_OUT.rawValue:
            let verb = String(decoding: text.prefix(while: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }), as: UTF8.self).uppercased()
            switch verb {
            case _ where stage == .content && verb != "QUIT": break
            case "EHLO", "HELO": stage = .hello
            case "STARTTLS": stage = .startTLS
            case "AUTH": stage = .authentication
            case "MAIL": stage = .sender
            case "RCPT": stage = .recipient
            case "DATA": stage = .data
            case "QUIT": quitting = true
            default: break  // AUTH continuation lines
            }
        default:
            break
        }
    }

    func outcome(_ code: CURLcode, replyCode: Int, curlMessage: String) -> CurlSMTPOutcome {
        CurlSMTPOutcome(code: code, replyCode: replyCode, lastReply: lastReply, stage: stage, curlMessage: curlMessage)
    }
}
