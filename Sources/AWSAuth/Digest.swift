import CCrypto

/// SHA-256, HMAC-SHA256 and MD5 from libcrypto (OpenSSL 3), one-shot.
public enum Digest {
    /// OpenSSL (ours, and libcurl's for https) frees its locks and tables in an `atexit` handler unless told
    /// not to. A thread still finishing a TLS connection or a digest while the process exits (an async
    /// command's last objects are released on a pool thread as the main thread exits) then takes a freed lock,
    /// and a run that had done its work and written its report crashes on the way out (seen once in CI:
    /// SIGSEGV in `pthread_rwlock_unlock` while the main thread was in libcrypto). The memory goes with the
    /// process anyway. Called first in `main`, before anything initialises OpenSSL (the first call decides).
    public static func keepOpenSSLUntilExit() {
        _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
    }

    static func digest(_ data: UnsafeRawBufferPointer, size: Int, _ md: OpaquePointer?) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        out.withUnsafeMutableBufferPointer { o in
            var len = UInt32(size)
            _ = EVP_Digest(data.baseAddress, data.count, o.baseAddress, &len, md, nil)
        }
        return out
    }

    public static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] { digest(data, size: 32, EVP_sha256()) }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { sha256($0) } }
    public static func sha256(_ s: String) -> [UInt8] { sha256(Array(s.utf8)) }

    public static func md5(_ data: UnsafeRawBufferPointer) -> [UInt8] { digest(data, size: 16, EVP_md5()) }

    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] { hmac(.sha256, key: key, data) }

    public static func hmacSHA256(key: [UInt8], _ s: String) -> [UInt8] { hmacSHA256(key: key, Array(s.utf8)) }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func hex(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Uniform random bytes from the OS's generator (for jitter and random partition keys).
    public static func randomUInt64() -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { _ = RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) }
        return v
    }
}

extension Digest {
    /// The two SHA-2 sizes SCRAM uses.
    public enum SHA2: Sendable {
        case sha256, sha512
        public var size: Int { self == .sha256 ? 32 : 64 }
        var md: OpaquePointer? { self == .sha256 ? EVP_sha256() : EVP_sha512() }
    }

    public static func hash(_ h: SHA2, _ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { digest($0, size: h.size, h.md) } }

    public static func hmac(_ h: SHA2, key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: h.size)
        var len = UInt32(h.size)
        key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                out.withUnsafeMutableBufferPointer { o in
                    _ = HMAC(h.md, k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, o.baseAddress, &len)
                }
            }
        }
        return out
    }

    /// PBKDF2 with HMAC-`h` (RFC 8018), `h.size` bytes out: SCRAM's SaltedPassword. nil when libcrypto refuses
    /// (an iteration count it cannot take).
    public static func pbkdf2(_ h: SHA2, password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8]? {
        guard iterations >= 1, iterations <= Int(Int32.max) else { return nil }
        var out = [UInt8](repeating: 0, count: h.size)
        let ok = password.withUnsafeBytes { p in
            salt.withUnsafeBytes { s in
                out.withUnsafeMutableBufferPointer { o in
                    PKCS5_PBKDF2_HMAC(p.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(p.count),
                                      s.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(s.count),
                                      Int32(iterations), h.md, Int32(h.size), o.baseAddress)
                }
            }
        }
        return ok == 1 ? out : nil
    }

    /// `n` bytes from the OS's generator (SCRAM nonces).
    public static func randomBytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { _ = RAND_bytes($0.baseAddress, Int32($0.count)) }
        return out
    }
}
