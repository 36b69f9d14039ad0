package contprof.boot;

/* Defined by the contprof JVM agent in the boot class loader at late attach:
 * run() calls rebind(), the agent's native, which rebinds
 * Throwable.fillInStackTrace(int). Called from a boot class, HotSpot binds it
 * without warning. */
final class Rebind {
    private Rebind() {
    }

    private static native void rebind();

    static void run() {
        rebind();
    }
}
