import Foundation
import Logging
import NIOConcurrencyHelpers

/// Reports transfer progress: a redrawn status line on a terminal, plain log lines otherwise
/// (cron, CI, pipes).
public final class ProgressReporter: Sendable {
    let logger: Logger
    let terminal: Bool
    let state = NIOLockedValueBox(State())
    let label: String
    let itemKey: String

    struct State {
        var bytes: Int64 = 0
        var active: [String: Int64] = [:]
        var done = 0
        var total = 0
        var expectedBytes: Int64 = 0
        var started = ContinuousClock.now
        var ticker: Task<Void, Never>?
    }

    /// A reporter for `label` (e.g. "fetch"), whose items are `itemKey`s (an image, a node);
    /// `terminal` defaults to whether stderr is a TTY.
    public init(label: String, itemKey: String = "image", logger: Logger, terminal: Bool = isatty(2) == 1) {
        self.label = label
        self.itemKey = itemKey
        self.logger = logger
        self.terminal = terminal
    }

    /// Starts a run of `total` items, moving `bytes` in all if known (then an ETA is shown).
    public func start(total: Int, bytes: Int64 = 0) {
        state.withLockedValue { $0.total = total; $0.expectedBytes = bytes; $0.started = .now }
        guard terminal else { return }
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                self?.draw()
            }
        }
        state.withLockedValue { $0.ticker = task }
    }

    /// An item started.
    public func begin(_ item: String) {
        state.withLockedValue { $0.active[item] = 0 }
        if !terminal { logger.info("\(label) started", metadata: [itemKey: "\(item)"]) }
    }

    /// Bytes moved for an item.
    public func add(_ item: String, bytes: Int) {
        state.withLockedValue {
            $0.bytes += Int64(bytes)
            $0.active[item, default: 0] += Int64(bytes)
        }
    }

    /// An item finished (or failed, with `error`).
    public func end(_ item: String, summary: String, error: String? = nil) {
        let bytes = state.withLockedValue { s -> Int64 in
            s.done += 1
            return s.active.removeValue(forKey: item) ?? 0
        }
        if terminal { clearLine() }
        if let error {
            logger.error("\(label) failed", metadata: [itemKey: "\(item)", "error": "\(error)"])
        } else {
            logger.info("\(label) done", metadata: [itemKey: "\(item)", "result": "\(summary)", "bytes": "\(bytes)"])
        }
    }

    /// Stops the status line.
    public func finish() {
        let t = state.withLockedValue { s -> Task<Void, Never>? in
            let t = s.ticker
            s.ticker = nil
            return t
        }
        t?.cancel()
        if terminal { clearLine() }
    }

    /// Bytes moved so far, and seconds since start.
    public var totals: (bytes: Int64, seconds: Double) {
        state.withLockedValue { s in
            let d = ContinuousClock.now - s.started
            return (s.bytes, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
    }

    func draw() {
        let line = state.withLockedValue { s -> String in
            let d = ContinuousClock.now - s.started
            let secs = max(0.001, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            let rate = Double(s.bytes) / secs
            let names = s.active.keys.sorted().prefix(3).map { "\($0) \(formatBytes(s.active[$0] ?? 0))" }.joined(separator: ", ")
            var eta = ""
            if s.expectedBytes > 0, rate > 0 {
                let left = Double(max(0, s.expectedBytes - s.bytes)) / rate
                eta = String(format: ", ETA %d:%02d", Int(left) / 60, Int(left) % 60)
            }
            return "\(label): \(s.done)/\(s.total) done, \(formatBytes(s.bytes)) at \(formatBytes(Int64(rate)))/s\(eta)  \(names)"
        }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + String(line.prefix(160))).utf8))
    }

    func clearLine() {
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// `1.5 MiB`.
public func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
}
