/*
 * importer.h — import directories written by the core's file exporter
 * (<base>.pprof.gz + <base>.json sidecar holding the event.json
 * document), once or by watching them.
 */
#ifndef EX_IMPORTER_H
#define EX_IMPORTER_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

typedef struct ex_import_stats {
    size_t imported, duplicates, rejected, skipped;
} ex_import_stats;

/* One pass over dir (not recursive). Files already imported (same path,
 * size, mtime) are skipped cheaply. With wait_for_sidecar, a profile whose
 * .json is not there yet is left for a later pass (the exporter renames
 * the sidecar last); without it, such a profile is imported with the times
 * in the pprof and no tags. Rejected files are logged once and not
 * retried. Returns 0, or -1 when dir cannot be read. */
int ex_import_dir(ex_store *st, const char *dir, size_t max_inflated, bool wait_for_sidecar,
                  ex_import_stats *stats);

typedef struct ex_importer ex_importer;

/* Watch dirs (copied) on a background thread, one pass every interval_ms.
 * NULL if the thread cannot start. */
ex_importer *ex_importer_start(ex_store *st, const char *const *dirs, size_t ndirs, size_t max_inflated,
                               int interval_ms);
/* Stop the thread (waits for the current pass) and free. */
void ex_importer_stop(ex_importer *im);

#endif /* EX_IMPORTER_H */
