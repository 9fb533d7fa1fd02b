import Foundation
import SeedOCI

/// A bounded queue between a libarchive thread and async code. Either side may block (a plain
/// thread) or suspend (a task); a full queue stops the producer, which is the backpressure that
/// keeps memory flat. The consumer can close the queue early; the producer then fails with
/// `cancelled` instead of waiting forever.
final class BoundedChannel<Element: Sendable>: @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [Element] = []
    private let capacity: Int
    private var end: Result<Void, any Error>?
    private var closed = false
    private var asyncReceiver: CheckedContinuation<Element?, any Error>?
    private var asyncSender: (CheckedContinuation<Void, any Error>, Element)?

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    private var closedError: SeedError { SeedError(.cancelled, "the other side of the stream went away") }

    // MARK: producer side

    /// Appends, suspending while the queue is full.
    func send(_ element: Element) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                cond.lock()
                if closed {
                    cond.unlock()
                    c.resume(throwing: closedError)
                    return
                }
                if items.count < capacity {
                    let wake = deliverLocked(element)
                    cond.unlock()
                    wake?()
                    c.resume()
                } else {
                    asyncSender = (c, element)
                    cond.unlock()
                }
            }
        } onCancel: {
            self.close()
        }
    }

    /// Appends, blocking the calling thread while the queue is full.
    func sendBlocking(_ element: Element) throws {
        cond.lock()
        while items.count >= capacity && !closed { cond.wait() }
        if closed {
            cond.unlock()
            throw closedError
        }
        let wake = deliverLocked(element)
        cond.unlock()
        wake?()
    }

    /// Ends the stream, with an error or cleanly.
    func finish(throwing error: (any Error)? = nil) {
        cond.lock()
        if end == nil { end = error.map { .failure($0) } ?? .success(()) }
        var wake: (() -> Void)?
        if items.isEmpty, let r = asyncReceiver {
            asyncReceiver = nil
            let e = end!
            wake = { r.resume(with: e.map { nil }) }
        }
        cond.broadcast()
        cond.unlock()
        wake?()
    }

    /// Hands `element` to a waiting async receiver or queues it. Called with the lock held;
    /// returns the resumption to run once the lock is released.
    private func deliverLocked(_ element: Element) -> (() -> Void)? {
        if let r = asyncReceiver {
            asyncReceiver = nil
            return { r.resume(returning: element) }
        }
        items.append(element)
        cond.broadcast()
        return nil
    }

    // MARK: consumer side

    /// Takes the next element, blocking the calling thread; nil at the end.
    func receiveBlocking() throws -> Element? {
        cond.lock()
        while true {
            if !items.isEmpty {
                let e = items.removeFirst()
                let wake = refillLocked()
                cond.broadcast()
                cond.unlock()
                wake?()
                return e
            }
            if closed { cond.unlock(); throw closedError }
            if let end {
                cond.unlock()
                try end.get()
                return nil
            }
            cond.wait()
        }
    }

    /// Takes the next element, suspending; nil at the end.
    func receive() async throws -> Element? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Element?, any Error>) in
                cond.lock()
                if !items.isEmpty {
                    let e = items.removeFirst()
                    let wake = refillLocked()
                    cond.broadcast()
                    cond.unlock()
                    wake?()
                    c.resume(returning: e)
                    return
                }
                if closed { cond.unlock(); c.resume(throwing: closedError); return }
                if let end { cond.unlock(); c.resume(with: end.map { nil }); return }
                asyncReceiver = c
                cond.unlock()
            }
        } onCancel: {
            self.close()
        }
    }

    /// Moves a suspended sender's element into the freed slot. Lock held.
    private func refillLocked() -> (() -> Void)? {
        guard let (c, e) = asyncSender, items.count < capacity else { return nil }
        asyncSender = nil
        items.append(e)
        return { c.resume() }
    }

    /// Closes the channel from the consumer's side: pending and future sends and receives fail.
    func close() {
        cond.lock()
        closed = true
        items.removeAll()
        let s = asyncSender
        let r = asyncReceiver
        asyncSender = nil
        asyncReceiver = nil
        cond.broadcast()
        cond.unlock()
        s?.0.resume(throwing: closedError)
        r?.resume(throwing: closedError)
    }
}

/// Runs blocking work on a dedicated thread (never on the cooperative pool) and returns its
/// result to the awaiting task.
enum ArchiveThread {
    static func run<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let t = Thread {
                c.resume(with: Result { try body() })
            }
            t.name = name
            t.stackSize = 4 << 20
            t.start()
        }
    }
}

/// Moves a value that is only ever touched by one thread at a time across an isolation boundary
/// (the caller awaits the thread that uses it).
struct Handoff<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
