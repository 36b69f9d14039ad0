/*
 * NativeTarget — JVM programs whose CPU is spent in native code, for the
 * native-frames tests (run_case.sh native_*).
 *
 * java NativeTarget deflate [seconds [startfile]]: a thread "deflater" compresses a
 * 1 MiB buffer with java.util.zip.Deflater in a loop (its CPU is in libz,
 * called through Deflater.deflateBytesBytes) and asks for a full
 * collection every 8 rounds, while a thread "churn" keeps replacing a live
 * set, so that the GC worker threads have work too. With a startfile the
 * threads start at once but the seconds count from when that file appears
 * (a late-attach test creates it once the agent is in; at most 60 s).
 */
import java.util.Random;
import java.util.zip.Deflater;

public class NativeTarget {
    static volatile long sink;
    static volatile long end; /* 0 while waiting for the start file */

    static double seconds;

    static boolean running() {
        long e = end;
        return e == 0 || System.nanoTime() < e;
    }

    static long threadCpu() {
        return java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
    }

    /* The deflater goes on past the deadline until it has had a quarter of
     * the run in CPU since the clock started (at most half a minute more): on a
     * loaded machine the known answer (time under deflate) must not depend
     * on the load. */
    static boolean deflating(long[] cpu0) {
        if (running()) {
            if (end == 0) cpu0[0] = -1;
            else if (cpu0[0] < 0) cpu0[0] = threadCpu();
            return true;
        }
        return System.nanoTime() < end + 30_000_000_000L
            && threadCpu() - Math.max(cpu0[0], 0) < (long) (seconds * 0.25e9);
    }

    static void deflateLoop() {
        byte[] in = new byte[1 << 20];
        Random r = new Random(42);
        for (int i = 0; i < in.length; i++)
            in[i] = (byte) ("abcdefgh".charAt(r.nextInt(8)) + (i % 1024 == 0 ? r.nextInt(64) : 0));
        byte[] out = new byte[in.length + 1024];
        Deflater d = new Deflater(6);
        long[] cpu0 = {-1};
        for (int round = 1; deflating(cpu0); round++) {
            /* GC work in step with the deflating, however little CPU this
             * process gets on a loaded machine. */
            if (round % 8 == 0)
                System.gc();
            d.reset();
            d.setInput(in);
            d.finish();
            while (!d.finished())
                sink += d.deflate(out);
        }
        d.end();
    }

    /* A live set of ~16 MiB that the full collections below must mark and
     * move (the GC worker threads "GC Thread#N" do that). */
    static final Object[] live = new Object[16384];

    static void churn() {
        int i = 0;
        while (running()) {
            live[i++ & 16383] = new long[64 + (i & 255)];
            sink += live[(i * 7) & 16383] == null ? 0 : 1;
        }
    }

    public static void main(String[] args) throws Exception {
        double s = args.length > 1 ? Double.parseDouble(args[1]) : 2.0;
        seconds = s;
        java.io.File start = args.length > 2 ? new java.io.File(args[2]) : null;
        if (!"deflate".equals(args.length > 0 ? args[0] : "deflate"))
            throw new IllegalArgumentException("unknown mode " + args[0]);
        if (start == null)
            end = System.nanoTime() + (long) (s * 1e9);
        Thread t = new Thread(NativeTarget::deflateLoop, "deflater");
        Thread c = new Thread(NativeTarget::churn, "churn");
        t.start();
        c.start();
        if (start != null) {
            long giveUp = System.nanoTime() + 60_000_000_000L;
            while (!start.exists() && System.nanoTime() < giveUp)
                Thread.sleep(20);
            end = System.nanoTime() + (long) (s * 1e9);
        }
        t.join();
        c.join();
        System.out.println("done " + (sink & 1));
    }
}
