/* librdkafka's mock cluster as a fault-injecting Kafka peer for pinbench's producer tests.
 *
 *   mock_cluster PREFIX PARTITIONS BROKERS
 *
 * Creates a mock cluster, topics PREFIX.pin|geo|user, prints "bootstrap <list>" and then reads commands:
 *   perr N CODE     the next N Produce requests fail with error CODE (e.g. 6 NOT_LEADER_OR_FOLLOWER, 7 REQUEST_TIMED_OUT)
 *   down ID | up ID broker ID goes down (connections closed, refused) or comes back
 *   rtt ID MS       adds round-trip time to broker ID
 *   count TOPIC     consumes TOPIC from the beginning; prints "count <records> <distinct keys> <duplicates>"
 *   quit
 * Each command answers one line starting with "ok" or "count". Build: gcc -O2 mock_cluster.c -lrdkafka
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_mock_cluster_t *mc;
static char bootstraps[1024];

static int cmp(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static void count_topic(const char *topic) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "mock-count", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "check.crcs", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
        printf("count -1 -1 -1\n");
        fflush(stdout);
        return;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    size_t cap = 1 << 16, n = 0;
    long *keys = malloc(cap * sizeof(long));
    int idle = 0;
    while (idle < 15) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) { idle++; continue; }
        if (!m->err && m->key) {
            idle = 0;
            char buf[32] = {0};
            memcpy(buf, m->key, m->key_len < 31 ? m->key_len : 31);
            if (n == cap) { cap *= 2; keys = realloc(keys, cap * sizeof(long)); }
            keys[n++] = atol(buf);
        }
        rd_kafka_message_destroy(m);
    }
    qsort(keys, n, sizeof(long), cmp);
    size_t distinct = 0, dups = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && keys[i] == keys[i - 1]) dups++; else distinct++;
    }
    printf("count %zu %zu %zu\n", n, distinct, dups);
    fflush(stdout);
    free(keys);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: mock_cluster PREFIX PARTITIONS BROKERS\n"); return 2; }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "%s\n", err); return 1; }
    mc = rd_kafka_mock_cluster_new(rk, atoi(argv[3]));
    if (!mc) { fprintf(stderr, "cannot create mock cluster\n"); return 1; }
    snprintf(bootstraps, sizeof bootstraps, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    const char *kinds[] = {"pin", "geo", "user"};
    for (int k = 0; k < 3; k++) {
        char topic[256];
        snprintf(topic, sizeof topic, "%s.%s", argv[1], kinds[k]);
        rd_kafka_mock_topic_create(mc, topic, atoi(argv[2]), 1);
    }
    printf("bootstrap %s\n", bootstraps);
    fflush(stdout);
    char line[512];
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = {0}, arg[256] = {0};
        long a = 0, b = 0;
        if (sscanf(line, "%31s", cmd) != 1) continue;
        if (!strcmp(cmd, "perr") && sscanf(line, "%*s %ld %ld", &a, &b) == 2) {
            rd_kafka_resp_err_t *errs = malloc(sizeof(*errs) * (size_t)a);
            for (long i = 0; i < a; i++) errs[i] = (rd_kafka_resp_err_t)b;
            rd_kafka_mock_push_request_errors_array(mc, 0 /* Produce */, (size_t)a, errs);
            free(errs);
            printf("ok\n");
        } else if (!strcmp(cmd, "down") && sscanf(line, "%*s %ld", &a) == 1) {
            rd_kafka_mock_broker_set_down(mc, (int32_t)a);
            printf("ok\n");
        } else if (!strcmp(cmd, "up") && sscanf(line, "%*s %ld", &a) == 1) {
            rd_kafka_mock_broker_set_up(mc, (int32_t)a);
            printf("ok\n");
        } else if (!strcmp(cmd, "rtt") && sscanf(line, "%*s %ld %ld", &a, &b) == 2) {
            rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b);
            printf("ok\n");
        } else if (!strcmp(cmd, "count") && sscanf(line, "%*s %255s", arg) == 1) {
            count_topic(arg);
            continue;
        } else if (!strcmp(cmd, "quit")) {
            break;
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
