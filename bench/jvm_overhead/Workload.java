/*
 * Workload — fixed amounts of work for the JVM overhead benchmark, so that
 * any profiler cost shows up as extra CPU and wall time.
 *
 * java Workload cpu|alloc|exc SCALE
 *   cpu    hashing and sorting over a mix of methods (JIT-compiled hot code)
 *   alloc  short-lived objects of several classes plus a retained window
 *   exc    an ordinary exception thrown and caught nearby every ~10 us of
 *          hashing (about 100k exceptions/s here)
 * Eight idle pool threads sit parked meanwhile, as in a typical service.
 */
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

public class Workload {
    static volatile long sink;

    static long mix(long x) {
        x ^= x >>> 33;
        x *= 0xff51afd7ed558ccdL;
        return x ^ (x >>> 29);
    }

    static long hashRun(int n, long seed) {
        long h = seed;
        for (int i = 0; i < n; i++) h = mix(h + i);
        return h;
    }

    static long sortRun(int n, long seed) {
        long[] a = new long[n];
        for (int i = 0; i < n; i++) a[i] = mix(seed + i);
        Arrays.sort(a);
        return a[n / 2];
    }

    static void cpu(int scale) {
        for (int r = 0; r < scale; r++) {
            sink += hashRun(2_000_000, r);
            sink += sortRun(20_000, r);
        }
    }

    static final class Node {
        final long key; final Object payload; Node next;
        Node(long key, Object payload) { this.key = key; this.payload = payload; }
    }

    static void alloc(int scale) {
        List<Object> window = new ArrayList<>();
        for (int r = 0; r < scale; r++) {
            Node head = null;
            for (int i = 0; i < 20_000; i++) {
                Node n = new Node(mix(i + r), (i & 7) == 0 ? new byte[256] : "s" + i);
                n.next = head;
                head = n;
            }
            window.add(head);
            if (window.size() > 32) window.remove(0);
            sink += head.key;
        }
    }

    static long check(long h) {
        if ((h & 1) == 0) throw new IllegalArgumentException("even " + (h & 0xff));
        return h;
    }

    static void exc(int scale) {
        for (int r = 0; r < scale; r++) {
            for (int i = 0; i < 100_000; i++) {
                long h = hashRun(2_500, i + r);
                try {
                    sink += check(h & ~1L);
                } catch (IllegalArgumentException e) {
                    sink += e.getMessage().length();
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        ExecutorService idle = Executors.newFixedThreadPool(8);
        for (int i = 0; i < 8; i++) idle.submit(() -> { });
        int scale = Integer.parseInt(args[1]);
        if (args[0].equals("cpu")) cpu(scale);
        else if (args[0].equals("exc")) exc(scale);
        else alloc(scale);
        idle.shutdown();
        System.out.println("sink " + (sink & 1));
    }
}
