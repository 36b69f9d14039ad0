/*
 * HeapTarget — known answers for the live-heap tracker and short-lived
 * threads (the JVM agent's end-to-end tests; see run_case.sh).
 *
 * java HeapTarget live MIB SECONDS
 *   retain() keeps MIB MiB of long[] alive (64 KiB arrays) to the end while
 *   churn() allocates short-lived byte[] for SECONDS. Before exiting it
 *   makes sure that at least two GC cycles able to free sampled objects ran
 *   after the live set was complete (System.gc() only if the collector did
 *   not run them by itself; it prints how many did).
 * java HeapTarget vthreads PARKED SECONDS (JDK 21+)
 *   PARKED virtual threads "vpark-N" wait in vparkWait() for SECONDS while
 *   two virtual threads "vspin-N" spin in vspin(); prints "vthreads ready"
 *   once all have started.
 * java HeapTarget short THREADS MICROS
 *   THREADS threads, 16 at a time, each spinning MICROS µs of its own CPU in
 *   shortWork(); prints "short cpu ns: N", their total CPU by their own clocks.
 * java HeapTarget requests SECONDS
 *   a thread per request, one started every 4 ms for SECONDS, alternately
 *   running fastRequest() (sleeps 2 ms) and slowRequest() (sleeps 20 ms);
 *   prints "fast wall ns: N" and "slow wall ns: M", the time each kind
 *   spent in its method by System.nanoTime().
 */
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.atomic.AtomicLong;

public class HeapTarget {
    static volatile long sink;
    static Object[] retained;
    static final Object[] ring = new Object[1024];

    static void retain(long mib) {
        int n = (int) (mib * 16); /* 64 KiB each: 8190 longs + the array header */
        retained = new Object[n];
        for (int i = 0; i < n; i++) retained[i] = new long[8190];
    }

    static int k;
    static void churn() {
        for (int i = 0; i < 1000; i++) ring[(k++) & 1023] = new byte[8192];
    }

    /* Finished GC cycles that can free tagged objects: major ones on
     * generational ZGC, cycles (not pauses) elsewhere. */
    static long cycles() {
        long all = 0, major = 0;
        boolean hasMajor = false;
        for (GarbageCollectorMXBean b : ManagementFactory.getGarbageCollectorMXBeans()) {
            String n = b.getName();
            if (n.contains("Pauses")) continue;
            if (n.contains("Major")) { hasMajor = true; major += b.getCollectionCount(); }
            all += b.getCollectionCount();
        }
        return hasMajor ? major : all;
    }

    /* Generational ZGC: young collections (minor, and the young part of
     * every major); 0 elsewhere. */
    static long youngCollections() {
        long n = 0;
        for (GarbageCollectorMXBean b : ManagementFactory.getGarbageCollectorMXBeans())
            if (b.getName().equals("ZGC Minor Cycles") || b.getName().equals("ZGC Major Cycles"))
                n += b.getCollectionCount();
        return n;
    }

    static void live(long mib, double seconds) {
        retain(mib);
        long base = cycles(), youngBase = youngCollections();
        long end = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < end) churn();
        /* On generational ZGC sampled objects are examined only after they
         * are promoted (16 young collections at most) and a major cycle
         * then runs: churn until the first has happened, for at most 3 s
         * more; then System.gc() (a major, which collects the young too)
         * makes up the count. */
        long limit = System.nanoTime() + 3_000_000_000L;
        while ((youngBase > 0 || youngCollections() > 0) && youngCollections() - youngBase < 17) {
            if (System.nanoTime() < limit) churn();
            else System.gc();
        }
        long natural = cycles() - base;
        /* Two cycles that began after that (after the last retained object
         * was allocated elsewhere), one more for the agent's polling lag,
         * and a moment for their ObjectFree events. */
        base = cycles();
        for (int i = 0; i < 3 && cycles() - base < 3; i++) System.gc();
        for (int i = 0; i < 20; i++) churn();
        System.out.println("retained MiB: " + mib + ", natural GC cycles: " + natural
                           + ", after System.gc: " + (cycles() - base));
    }

    static long spinUntil(ThreadMXBean mx, long cpuNs) {
        long x = 1, t0 = mx.getCurrentThreadCpuTime();
        while (mx.getCurrentThreadCpuTime() - t0 < cpuNs)
            for (int i = 0; i < 2000; i++) x = x * 6364136223846793005L + i;
        return mx.getCurrentThreadCpuTime() - t0 + (x == 42 ? 1 : 0);
    }

    static final AtomicLong shortCpu = new AtomicLong();

    static void shortWork(ThreadMXBean mx, long micros) {
        shortCpu.addAndGet(spinUntil(mx, micros * 1000));
    }

    static void shortThreads(int threads, long micros) throws InterruptedException {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        int started = 0;
        while (started < threads) {
            Thread[] batch = new Thread[Math.min(16, threads - started)];
            for (int i = 0; i < batch.length; i++) {
                String name = "short-" + (started + i);
                batch[i] = new Thread(() -> shortWork(mx, micros), name);
                batch[i].start();
            }
            for (Thread t : batch) t.join();
            started += batch.length;
        }
        System.out.println("short cpu ns: " + shortCpu.get());
    }

    static final AtomicLong fastWall = new AtomicLong(), slowWall = new AtomicLong();

    static void fastRequest() throws InterruptedException {
        long t0 = System.nanoTime();
        Thread.sleep(2);
        fastWall.addAndGet(System.nanoTime() - t0);
    }

    static void slowRequest() throws InterruptedException {
        long t0 = System.nanoTime();
        Thread.sleep(20);
        slowWall.addAndGet(System.nanoTime() - t0);
    }

    static void requests(double seconds) throws InterruptedException {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        java.util.List<Thread> all = new java.util.ArrayList<>();
        for (int k = 0; System.nanoTime() < end; k++) {
            boolean fast = (k & 1) == 1;
            Thread t = new Thread(() -> {
                try {
                    if (fast) fastRequest(); else slowRequest();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "req-" + k);
            t.start();
            all.add(t);
            Thread.sleep(4);
        }
        for (Thread t : all) t.join();
        System.out.println("fast wall ns: " + fastWall.get());
        System.out.println("slow wall ns: " + slowWall.get());
    }

    /* Thread.ofVirtual().name(n).start(r) by reflection: these classes are
     * compiled for Java 17. */
    static Thread startVirtual(String name, Runnable r) throws Exception {
        Object b = Thread.class.getMethod("ofVirtual").invoke(null);
        Class<?> bc = Class.forName("java.lang.Thread$Builder");
        b = bc.getMethod("name", String.class).invoke(b, name);
        return (Thread) bc.getMethod("start", Runnable.class).invoke(b, r);
    }

    static void vparkWait(Object gate, long end) {
        synchronized (gate) { }
        long left;
        while ((left = end - System.nanoTime()) > 0)
            java.util.concurrent.locks.LockSupport.parkNanos(left);
    }

    static void vspin(long end) {
        while (System.nanoTime() < end) sink += spinN(100_000);
    }

    static long spinN(long n) {
        long x = 1;
        for (long i = 0; i < n; i++) x = x * 6364136223846793005L + i;
        return x;
    }

    static void vthreads(int parked, double seconds) throws Exception {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        Object gate = new Object();
        java.util.List<Thread> all = new java.util.ArrayList<>();
        for (int i = 0; i < parked; i++)
            all.add(startVirtual("vpark-" + i, () -> vparkWait(gate, end)));
        for (int i = 0; i < 2; i++)
            all.add(startVirtual("vspin-" + i, () -> vspin(end)));
        System.out.println("vthreads ready");
        for (Thread t : all) t.join();
    }

    public static void main(String[] a) throws Exception {
        switch (a[0]) {
            case "live": live(Long.parseLong(a[1]), Double.parseDouble(a[2])); break;
            case "short": shortThreads(Integer.parseInt(a[1]), Long.parseLong(a[2])); break;
            case "vthreads": vthreads(Integer.parseInt(a[1]), Double.parseDouble(a[2])); break;
            case "requests": requests(Double.parseDouble(a[1])); break;
            default: throw new IllegalArgumentException(a[0]);
        }
    }
}
