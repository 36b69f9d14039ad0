// TruthTarget: programs whose true CPU profile is known, for checking that the
// JVM agent charges time to the code that really ran (inlined methods, deep
// stacks, lambda and overload names). Compiled with --release 17.
//
// usage: java TruthTarget MODE CPU_SECONDS [READY_FILE]   (tests/jvm/run_case.sh)
// Each mode works until the main thread has used CPU_SECONDS of CPU (at most
// 60 s of wall time), so a loaded machine still yields enough samples.
//   inline  a hot leaf mix() that the JIT inlines into outer()
//   split   heavy() and light() inlined into one loop, 3:1 by work
//   deep    a 300-deep recursion whose leaf burns the CPU
//   names   lambdas, a method handle and two overloads of calc
//   periodic  a() and b() spin 5 and 15 ms of CPU in turn: a 20 ms cycle of CPU
// With READY_FILE the program writes its pid there, then waits until the file
// is gone before working (a late-attach handshake: the test attaches, then
// deletes the file).
import java.io.File;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.LongUnaryOperator;

public class TruthTarget {
    static volatile long sink;
    static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
    static long cpuUntil, wallUntil;

    static boolean more() {
        return MX.getCurrentThreadCpuTime() < cpuUntil && System.nanoTime() < wallUntil;
    }

    static long mix(long x) {
        x ^= x >>> 33;
        x *= 0xff51afd7ed558ccdL;
        x ^= x >>> 33;
        x *= 0xc4ceb9fe1a85ec53L;
        x ^= x >>> 33;
        return x;
    }

    static long outer(long seed, int n) {
        long s = seed;
        for (int i = 0; i < n; i++)
            s = mix(s + i);
        return s;
    }

    static long step(long x, int rounds) {
        for (int k = 0; k < rounds; k++)
            x = (x * 6364136223846793005L + 1442695040888963407L) ^ (x >>> 29);
        return x;
    }

    /* Three loops of r steps against one: 3:1 by construction. */
    static long heavy(long x, int r) { return step(step(step(x, r) + 1, r) + 2, r); }
    static long light(long x, int r) { return step(x, r); }

    static long split(long seed, int n) {
        long s = seed;
        for (int i = 0; i < n; i++) {
            int r = 32 + (int) (s & 31); /* work units of random size */
            s = heavy(s, r);
            s = light(s, r);
        }
        return s;
    }

    static long deepLeaf() {
        long s = 0;
        while (more())
            s += outer(s, 10_000);
        return s;
    }

    static long deep(int depth) {
        return depth == 0 ? deepLeaf() : deep(depth - 1) + 1;
    }

    static long calc(int x) { return outer(x, 20_000); }
    static long calc(double x) { return outer((long) x, 60_000); }

    static long viaLambda(LongUnaryOperator op, long x) { return op.applyAsLong(x); }

    static void names() throws Throwable {
        MethodHandle mh = MethodHandles.lookup().findStatic(TruthTarget.class, "outer",
                MethodType.methodType(long.class, long.class, int.class));
        LongUnaryOperator lambda = x -> outer(x, 20_000);
        long s = 0;
        while (more()) {
            s += calc((int) s);
            s += calc((double) s);
            s += viaLambda(lambda, s);
            s += (long) mh.invokeExact(s, 20_000);
        }
        sink = s;
    }

    /* Spins until the thread has used ns more CPU. */
    static long spin(long ns) {
        long end = MX.getCurrentThreadCpuTime() + ns, n = 0;
        while (MX.getCurrentThreadCpuTime() < end)
            n++;
        return n;
    }

    static long periodicA() { return spin(5_000_000L); }
    static long periodicB() { return spin(15_000_000L); }

    public static void main(String[] args) throws Throwable {
        String mode = args[0];
        double secs = Double.parseDouble(args[1]);
        if (args.length > 2) {
            File ready = new File(args[2]);
            Files.writeString(ready.toPath(), Long.toString(ProcessHandle.current().pid()));
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (ready.exists() && System.nanoTime() < deadline)
                Thread.sleep(10);
        }
        cpuUntil = MX.getCurrentThreadCpuTime() + (long) (secs * 1e9);
        wallUntil = System.nanoTime() + 60_000_000_000L;
        long s = ThreadLocalRandom.current().nextLong();
        switch (mode) {
            case "inline":
                while (more())
                    s += outer(s, 100_000);
                break;
            case "split":
                while (more())
                    s += split(s, 10_000);
                break;
            case "periodic":
                while (more())
                    s += periodicA() + periodicB();
                break;
            case "deep":
                s = deep(300);
                break;
            case "names":
                names();
                break;
            default:
                throw new IllegalArgumentException(mode);
        }
        sink = s;
    }
}
