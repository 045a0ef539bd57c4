import Synchronization

/// Request ids in UUID form, made without a system call: `UUID()` reads the kernel's random
/// generator on every call (an open, a read and a close of /dev/urandom here), which showed up as
/// two of the nine system calls the gateway made per request. A random 64-bit prefix per process
/// keeps ids from different replicas apart; a counter keeps them apart within one.
enum RequestIDs {
    private static let prefix = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(UInt64.random(in: 0...UInt64(UInt32.max)))
    private static let digits = Array("0123456789abcdef".utf8)

    static func next() -> String {
        let count = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    buffer[index] = digits[Int((value >> UInt64(shift)) & 0xF)]
                    index += 1
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(prefix >> 32, nibbles: 8)
            dash()
            put(prefix >> 16, nibbles: 4)
            dash()
            put(prefix, nibbles: 4)
            dash()
            put(count >> 48, nibbles: 4)
            dash()
            put(count, nibbles: 12)
            return index
        }
    }
}
