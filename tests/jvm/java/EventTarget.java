// EventTarget — programs with known lock waits, exceptions and blocked
// threads, for the lock/exception profile tests (tests/jvm/events_case.py).
// Each mode prints one line of truth measured by the program itself.
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

public class EventTarget {
    static final class LockA {}
    static final class LockB {}
    static final class AppException extends RuntimeException {
        AppException(String m) { super(m); }
    }

    static final LockA lockA = new LockA();
    static final LockB lockB = new LockB();
    static final AtomicLong waitA = new AtomicLong(), waitB = new AtomicLong();
    static volatile long sink;

    static void sleepMs(long ms) {
        try { Thread.sleep(ms); } catch (InterruptedException e) { throw new RuntimeException(e); }
    }

    static void pathA(long end) {
        while (System.nanoTime() < end) {
            long t0 = System.nanoTime();
            synchronized (lockA) {
                waitA.addAndGet(System.nanoTime() - t0);
                sleepMs(2);
            }
        }
    }

    static void pathB(long end) {
        while (System.nanoTime() < end) {
            long t0 = System.nanoTime();
            synchronized (lockB) {
                waitB.addAndGet(System.nanoTime() - t0);
                sleepMs(2);
            }
        }
    }

    // Four threads queue on lockA, two on lockB, each holding 2 ms: ~3:1.
    static void locks(double secs) throws Exception {
        long end = System.nanoTime() + (long) (secs * 1e9);
        Thread[] ts = new Thread[6];
        for (int i = 0; i < ts.length; i++) {
            final boolean a = i < 4;
            ts[i] = new Thread(() -> { if (a) pathA(end); else pathB(end); }, (a ? "path-a-" : "path-b-") + i);
            ts[i].start();
        }
        for (Thread t : ts) t.join();
        System.out.println("truth waitA=" + waitA.get() + " waitB=" + waitB.get());
    }

    static final Lock jucA = new ReentrantLock();
    static final Lock jucB = new ReentrantReadWriteLock().writeLock();

    static void jucPath(Lock lock, AtomicLong waited, long end) {
        while (System.nanoTime() < end) {
            long t0 = System.nanoTime();
            lock.lock();
            try {
                waited.addAndGet(System.nanoTime() - t0);
                sleepMs(2);
            } finally {
                lock.unlock();
            }
        }
    }

    // As locks(), on a ReentrantLock (4 threads) and a write lock (2).
    static void juc(double secs) throws Exception {
        long end = System.nanoTime() + (long) (secs * 1e9);
        Thread[] ts = new Thread[6];
        for (int i = 0; i < ts.length; i++) {
            final boolean a = i < 4;
            ts[i] = new Thread(() -> jucPath(a ? jucA : jucB, a ? waitA : waitB, end), "juc-" + i);
            ts[i].start();
        }
        for (Thread t : ts) t.join();
        System.out.println("truth waitA=" + waitA.get() + " waitB=" + waitB.get());
    }

    static void throwState(int i) {
        try {
            throw new IllegalStateException("s" + i);
        } catch (IllegalStateException e) {
            sink += e.getMessage().length();
        }
    }

    static void throwApp(int i) {
        try {
            throw new AppException("a" + i);
        } catch (AppException e) {
            sink += e.getMessage().length();
        }
    }

    static void exceptions(double secs) {
        long end = System.nanoTime() + (long) (secs * 1e9), n = 0;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 100; i++) {
                throwState(i); throwState(i); throwState(i); throwApp(i);
            }
            n += 400;
        }
        System.out.println("truth thrown=" + n);
    }

    // Late attach: throws (so the throwing code is compiled, and
    // fillInStackTrace bound long before the agent comes) until the file
    // `go` exists, then runs exceptions(secs), whose truth counts only those.
    static void exceptionsAfter(double secs, String go) {
        java.io.File f = new java.io.File(go);
        long limit = System.nanoTime() + 60_000_000_000L;
        System.out.println("throwing");
        for (int i = 0; !f.exists() && System.nanoTime() < limit; i++) {
            for (int k = 0; k < 1000; k++) {
                throwState(k); throwApp(k);
            }
        }
        exceptions(secs);
    }

    static void waitForLock() {
        synchronized (lockA) {
            sink++;
        }
    }

    // One thread holds lockA for secs; "blocked-waiter" blocks on it.
    static void blocked(double secs) throws Exception {
        Object started = new Object();
        Thread holder = new Thread(() -> {
            synchronized (lockA) {
                synchronized (started) { started.notifyAll(); }
                sleepMs((long) (secs * 1000));
            }
        }, "lock-holder");
        synchronized (started) {
            holder.start();
            started.wait();
        }
        Thread waiter = new Thread(EventTarget::waitForLock, "blocked-waiter");
        waiter.start();
        waiter.join();
        holder.join();
        System.out.println("truth blocked");
    }

    // Throws n exceptions as fast as it can and prints the elapsed ns and
    // the thread's CPU ns (overhead runs, with and without the agent).
    static void throwRate(int n) {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long t0 = System.nanoTime(), c0 = mx.getCurrentThreadCpuTime();
        for (int i = 0; i < n; i++) {
            throwState(i);
            for (int k = 0; k < 20; k++) sink += k * i;
        }
        System.out.println("truth elapsed_ns=" + (System.nanoTime() - t0) + " cpu_ns=" + (mx.getCurrentThreadCpuTime() - c0));
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        double secs = args.length > 1 ? Double.parseDouble(args[1]) : 2.0;
        switch (mode) {
            case "locks": locks(secs); break;
            case "juc": juc(secs); break;
            case "exceptions": exceptions(secs); break;
            case "exceptions_attach": exceptionsAfter(secs, args[2]); break;
            case "blocked": blocked(secs); break;
            case "throwrate": throwRate((int) secs); break;
            default: throw new IllegalArgumentException(mode);
        }
    }
}
