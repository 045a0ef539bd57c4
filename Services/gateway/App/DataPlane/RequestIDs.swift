import Synchronization

/// Request ids in UUID form, made without a system call: `UUID()` reads the kernel's random
/// generator on every call (an open, a read and a close of /dev/urandom here), which showed up as
/// two of the nine system calls the gateway made per request. A random 64-bit prefix per process
/// keeps ids from different replicas apart; a counter keeps them apart within one.
enum RequestIDs {
    private static let prefix = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(UInt64.random(in: 0...UInt64(UInt32.max)))

    static func next() -> String {
        let count = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    // A digit computed, not looked up: a static table is a lazy global, checked on every use.
                    let nibble = UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF
                    buffer[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
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
