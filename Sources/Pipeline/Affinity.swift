import CNuma
import CPinShims

/// Optional CPU pinning for stage threads. libnuma, when the machine has NUMA support, keeps each
/// pinned thread's allocations on its local node.
public enum Affinity {
    public static var cpuCount: Int { Int(pb_cpu_count()) }

    public static var numaAvailable: Bool { numa_available() >= 0 }

    /// Pins the calling thread to `cpu % cpuCount`. Returns false when the OS refused.
    @discardableResult
    public static func pinCurrentThread(to cpu: Int) -> Bool {
        let ok = pb_pin_thread_to_cpu(Int32(cpu % cpuCount)) == 0
        if ok && numaAvailable { numa_set_localalloc() }
        return ok
    }
}
