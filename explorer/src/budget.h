/*
 * budget.h — one memory budget shared by every upload being inflated and
 * decoded at the same time, so N concurrent zip-bomb-sized uploads cannot
 * take N × --max-inflated of memory: a request reserves its estimate
 * before it allocates, waits a bounded time when the budget is spent, and
 * is refused (503, retryable) if it stays spent.
 */
#ifndef EX_BUDGET_H
#define EX_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

#define EX_DEFAULT_INFLATE_BUDGET (512u * 1024 * 1024)
#define EX_BUDGET_WAIT_MS 10000

/* Set the total (bytes; 0 = EX_DEFAULT_INFLATE_BUDGET). Call before serving. */
void ex_budget_set_limit(size_t bytes);
size_t ex_budget_limit(void);
/* Reserve bytes, waiting up to wait_ms for others to release. false when
 * the reservation is larger than the whole budget or the wait timed out. */
bool ex_budget_reserve(size_t bytes, int wait_ms);
void ex_budget_release(size_t bytes);
/* Bytes reserved right now (tests, logs). */
size_t ex_budget_in_use(void);

#endif /* EX_BUDGET_H */
