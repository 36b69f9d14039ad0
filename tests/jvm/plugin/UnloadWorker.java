/* Loaded by a fresh class loader each time (JvmTarget unload), then dropped. */
public class UnloadWorker {
    public static long work(long n) {
        long x = 7;
        for (long i = 0; i < n; i++) x = x * 31 + (i ^ (x >>> 7));
        return x;
    }
}
