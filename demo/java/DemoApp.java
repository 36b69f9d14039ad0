/*
 * DemoApp — a small Java service-like program with a known profile,
 * for trying the contprof JVM agent (see README.md next to it).
 *
 *  - thread "worker": CPU split 3:1 between Pricing.quote (75%) and
 *    Inventory.check (25%);
 *  - thread "ingest": allocates; Parser.parse makes 4x the bytes of
 *    Audit.record (byte[] vs char[]);
 *  - thread "sleeper": sleeps, so it has wall time and no CPU;
 *  - main waits for the given number of seconds (default 15), then exits.
 */
public class DemoApp {
    static volatile long sink;
    static final Object[] recent = new Object[128];

    /* Random work sizes (mean 100k): a fixed period could alias with the
     * kernel tick that drives CPU timers and skew the split. */
    static int unit(long i) { return 50_000 + (int) (((i * 0x9E3779B97F4A7C15L) >>> 40) % 100_000); }

    static final class Pricing {
        static long quote(long seed) { return Work.spin(seed, 3 * unit(seed)); }
    }

    static final class Inventory {
        static long check(long seed) { return Work.spin(seed, unit(seed + 1)); }
    }

    static final class Work {
        static long spin(long x, int n) {
            for (int i = 0; i < n; i++) x = x * 6364136223846793005L + 1442695040888963407L;
            return x;
        }
    }

    static final class Parser {
        static void parse(int i) { recent[i & 127] = new byte[4 * 4096]; }
    }

    static final class Audit {
        static void record(int i) { recent[(i + 64) & 127] = new char[2048]; } /* 4 KiB */
    }

    static Thread daemon(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    public static void main(String[] args) throws InterruptedException {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 15;
        daemon("worker", () -> {
            for (long i = 0; ; i++) sink += Pricing.quote(i) + Inventory.check(i);
        });
        daemon("ingest", () -> {
            for (int i = 0; ; i++) {
                Parser.parse(i);
                Audit.record(i);
                if ((i & 1023) == 0) Thread.onSpinWait();
            }
        });
        daemon("sleeper", () -> {
            try { Thread.sleep(Long.MAX_VALUE); } catch (InterruptedException e) { }
        });
        Thread.sleep(seconds * 1000);
        System.out.println("DemoApp done after " + seconds + " s");
    }
}
