/*
 * JvmTarget — the Java side of the JVM agent's end-to-end tests.
 *
 * java JvmTarget <mode> [seconds]; each mode has a known answer that the
 * test then reads back from the agent's pprof files:
 *   cpu      cpuHeavy does 3x the work of cpuLight; a thread "sleeper" sleeps
 *   alloc    allocHeavy allocates 4x the bytes of allocLight (long[] vs double[]);
 *            retain() keeps 64 MiB of int[] alive to the end (live heap)
 *   threads  thousands of short-lived threads named short-N
 *   unload   classes loaded by throw-away class loaders, then collected
 *   exit     a non-main thread calls System.exit(3) while others keep running
 *   daemon   main returns while daemon threads still spin
 *   deep     deepLeaf() spins 40 calls deep (stacks longer than max_frames)
 *   rename   a thread renames itself from "before-rename" to "after-rename"
 *   jit      type profiles that keep changing: compile, deoptimise, recompile
 *   takeover a Java signal handler replaces the agent's on SIGPROF mid-run;
 *            afterTakeover() must still be profiled
 */
import java.io.File;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;

public class JvmTarget {
    static volatile long sink;
    static final Object[] keep = new Object[256];
    static int keepIdx;

    static long spin(long n) {
        long x = 1;
        for (long i = 0; i < n; i++) {
            x = x * 6364136223846793005L + i;
        }
        return x;
    }

    /* Work units vary at random: a loop with a fixed period would alias with
     * the kernel tick at which CPU timers fire (4 ms at HZ=250), and any
     * tick-driven sampler would then over- or under-count one method. */
    static long rnd = 42;
    static int unit() {
        rnd = rnd * 6364136223846793005L + 1442695040888963407L;
        return 50_000 + (int) ((rnd >>> 33) % 100_000);
    }
    static void cpuHeavy() { sink += spin(3L * unit()); }
    static void cpuLight() { sink += spin(unit()); }

    /* Objects escape into `keep` so the JIT cannot scalar-replace them. */
    static void allocHeavy() {
        for (int i = 0; i < 4; i++) keep[keepIdx++ & 255] = new long[1024];
    }
    static void allocLight() { keep[keepIdx++ & 255] = new double[1024]; }

    static long deadline(double seconds) { return System.nanoTime() + (long) (seconds * 1e9); }

    static void startSleeper() {
        Thread t = new Thread(() -> {
            try { Thread.sleep(600_000); } catch (InterruptedException e) { }
        }, "sleeper");
        t.setDaemon(true);
        t.start();
    }

    /* Whether the calling thread still works: until the wall deadline and,
     * on a machine too loaded to give it a quarter of that time in CPU,
     * on until it has had that much (at most half a minute more), so that the
     * known answer does not depend on the load. */
    static boolean working(long end, double seconds) {
        long now = System.nanoTime();
        if (now < end) return true;
        return now < end + 30_000_000_000L
            && java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime()
               < (long) (seconds * 0.25e9);
    }

    static void cpu(double s) {
        startSleeper();
        long end = deadline(s);
        while (working(end, s)) { cpuHeavy(); cpuLight(); }
    }

    static Object[] retained;

    static void retain() {
        retained = new Object[4096];
        for (int i = 0; i < retained.length; i++) retained[i] = new int[4096]; /* 16 KiB each */
    }

    static void alloc(double s) {
        retain();
        long end = deadline(s);
        while (System.nanoTime() < end) {
            for (int i = 0; i < 100; i++) { allocHeavy(); allocLight(); }
        }
    }

    static void shortWork() { sink += spin(3_000_000); } /* ~3 ms: under one CPU interval */

    static void threads(double s) throws InterruptedException {
        long end = deadline(s);
        int n = 0;
        while (System.nanoTime() < end) {
            Thread[] batch = new Thread[16];
            for (int i = 0; i < batch.length; i++) {
                batch[i] = new Thread(JvmTarget::shortWork, "short-" + (n++));
                batch[i].start();
            }
            for (Thread t : batch) t.join();
        }
        System.out.println("threads started: " + n);
    }

    static void unload(double s, String pluginDir) throws Exception {
        URL[] urls = { new File(pluginDir).toURI().toURL() };
        long end = deadline(s);
        int loaders = 0;
        while (System.nanoTime() < end) {
            try (URLClassLoader l = new URLClassLoader(urls, null)) {
                Class<?> c = l.loadClass("UnloadWorker");
                Method m = c.getMethod("work", long.class);
                sink += (Long) m.invoke(null, 200_000L);
            }
            if (++loaders % 50 == 0) System.gc();
        }
        System.gc();
        System.out.println("loaders: " + loaders);
    }

    static void exitFromThread(double s) throws InterruptedException {
        for (int i = 0; i < 2; i++) {
            Thread t = new Thread(() -> { while (true) cpuLight(); }, "spinner-" + i);
            t.start(); /* non-daemon: only System.exit ends the process */
        }
        Thread exiter = new Thread(() -> {
            long end = deadline(s);
            while (System.nanoTime() < end) cpuHeavy();
            System.exit(3);
        }, "exiter");
        exiter.start();
        while (true) cpuLight();
    }

    static void daemon(double s) {
        for (int i = 0; i < 2; i++) {
            Thread t = new Thread(() -> { while (true) cpuLight(); }, "daemon-" + i);
            t.setDaemon(true);
            t.start();
        }
        long end = deadline(s);
        while (System.nanoTime() < end) cpuHeavy();
    }

    interface Shape { long area(long x); }
    static final class Sq implements Shape { public long area(long x) { return x * x; } }
    static final class Tri implements Shape { public long area(long x) { return x * x / 2; } }
    static final class Circ implements Shape { public long area(long x) { return x * x * 314 / 100; } }
    static final class Hex implements Shape { public long area(long x) { return x * x * 26 / 10; } }

    static long jitLoop(Shape[] shapes, int n) {
        long sum = 0;
        for (int i = 0; i < n; i++) sum += shapes[i % shapes.length].area(i);
        return sum;
    }

    /* Each phase makes the call site mono-, bi- or megamorphic in turn, so
     * compiled code keeps hitting traps and being recompiled. */
    static void jit(double s) {
        Shape[][] phases = {
            {new Sq()}, {new Sq(), new Tri()}, {new Circ()},
            {new Sq(), new Tri(), new Circ(), new Hex()}, {new Hex()},
        };
        long end = deadline(s);
        for (int p = 0; System.nanoTime() < end; p++) sink += jitLoop(phases[p % phases.length], 2_000_000);
    }

    /* Arrays too big for a TLAB: compiled code calls C2's (or C1's) runtime
     * stub, and the thread spends its time in VM code (allocation, zeroing)
     * under that stub's frame. */
    static void bigArrays() { keep[keepIdx++ & 255] = new long[1 << 16]; }

    static void bigAlloc(double s) {
        long end = deadline(s);
        while (System.nanoTime() < end)
            for (int i = 0; i < 100; i++) bigArrays();
    }

    static void rename(double s) throws InterruptedException {
        Thread t = new Thread(() -> {
            long end = deadline(s / 4);
            while (System.nanoTime() < end) cpuLight();
            Thread.currentThread().setName("after-rename");
            end = deadline(s * 3 / 4);
            while (System.nanoTime() < end) cpuLight();
        }, "before-rename");
        t.start();
        t.join();
    }

    static void deepLeaf(double s) {
        long end = deadline(s);
        while (System.nanoTime() < end) cpuLight();
    }

    static void deep(int depth, double s) {
        if (depth == 0) deepLeaf(s); else deep(depth - 1, s);
    }

    static void afterTakeover() { sink += spin(1_000_000); }

    static void takeover(double s) {
        long end = deadline(s / 2);
        while (System.nanoTime() < end) cpuHeavy();
        sun.misc.Signal.handle(new sun.misc.Signal("PROF"), sig -> System.out.println("java handler got " + sig));
        end = deadline(s / 2);
        while (System.nanoTime() < end) afterTakeover();
    }

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "cpu";
        double s = args.length > 1 ? Double.parseDouble(args[1]) : 2.0;
        switch (mode) {
            case "cpu": cpu(s); break;
            case "alloc": alloc(s); break;
            case "threads": threads(s); break;
            case "unload": unload(s, args[2]); break;
            case "exit": exitFromThread(s); break;
            case "daemon": daemon(s); break;
            case "jit": jit(s); break;
            case "bigalloc": bigAlloc(s); break;
            case "rename": rename(s); break;
            case "deep": deep(40, s); break;
            case "takeover": takeover(s); break;
            default: throw new IllegalArgumentException("unknown mode " + mode);
        }
        System.out.println("done " + (sink & 1));
    }
}
