/*
 * intake_server.h — a test HTTP intake on 127.0.0.1 (ephemeral port) that
 * records what it receives and can play a failing intake: answer a given
 * status, fail the first N requests with 500, answer slowly, or hang.
 */
#ifndef INTAKE_SERVER_H
#define INTAKE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct intake intake;

typedef struct intake_behaviour {
    int status;       /* answer (default 200)                        */
    int fail_first;   /* the first N requests get 500                */
    int delay_ms;     /* wait before answering                       */
    bool hang;        /* never answer (until intake_stop)            */
} intake_behaviour;

typedef struct intake_req {
    char method[16], url[256], content_type[256], api_key[128], origin[64];
    uint8_t *body; /* owned by the copy: free() it */
    size_t len;
} intake_req;

intake *intake_start(void);
/* The same, listening on a unix socket at path instead (as a local agent
 * does at /var/run/datadog/apm.socket). */
intake *intake_start_unix(const char *path);
int intake_port(const intake *in);
void intake_set(intake *in, intake_behaviour b);
/* Requests whose body arrived completely so far. */
int intake_requests(intake *in);
/* Wait until at least n requests arrived; false on timeout. */
bool intake_wait(intake *in, int n, int timeout_ms);
/* Copy of the last complete request (false if none). */
bool intake_last(intake *in, intake_req *out);
void intake_stop(intake *in);

/* A part of a multipart/form-data body. */
typedef struct mp_part {
    char name[128], filename[128], type[128];
    const uint8_t *data;
    size_t len;
} mp_part;

/* Parts of body split by the boundary from content_type; returns how many
 * (at most max), -1 when malformed. */
int mp_parse(const char *content_type, const uint8_t *body, size_t len, mp_part *parts, int max);

#endif /* INTAKE_SERVER_H */
