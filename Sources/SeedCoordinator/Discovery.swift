import Foundation
import SeedOCI

/// DNS discovery: every address a name resolves to (A and AAAA, e.g. a headless Service) is an
/// agent.
public enum AgentDiscovery {
    /// The agents behind `dns`, as `scheme://address:port`, sorted and without duplicates.
    public static func resolve(dns: String, port: Int, scheme: String) throws -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(dns, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            let why = rc == 0 ? "no addresses" : String(cString: gai_strerror(rc))
            throw SeedError(.io, "discovery: cannot resolve \(dns): \(why)")
        }
        defer { freeaddrinfo(first) }
        var urls = Set<String>()
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                let address = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                urls.insert(address.contains(":") ? "\(scheme)://[\(address)]:\(port)" : "\(scheme)://\(address):\(port)")
            }
            p = ai.pointee.ai_next
        }
        guard !urls.isEmpty else { throw SeedError(.io, "discovery: \(dns) resolves to no addresses") }
        return urls.sorted()
    }
}
