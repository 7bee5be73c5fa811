// Reference speed of the vendored llama.cpp without pith: pp512 (one 512-token batch) and tg64
// (64 single-token decodes), 3 repetitions after a warm-up, as llama-bench measures them.
// The vendored sources ship without tools/llama-bench, so this mirrors its method.
#include "llama.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
static void quiet(ggml_log_level, const char *, void *) {}
static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
int main(int argc, char ** argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL THREADS\n", argv[0]); return 1; }
    const int threads = atoi(argv[2]), pp = 512, tg = 64, reps = 3;
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    auto cp = llama_context_default_params();
    cp.n_ctx = pp + tg; cp.n_batch = pp; cp.n_ubatch = pp;
    cp.n_threads = threads; cp.n_threads_batch = threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_batch batch = llama_batch_init(pp, 0, 1);
    auto add = [&](llama_token t, int pos, bool logits) {
        int i = batch.n_tokens++;
        batch.token[i] = t; batch.pos[i] = pos; batch.n_seq_id[i] = 1; batch.seq_id[i][0] = 0;
        batch.logits[i] = logits;
    };
    srand(12345);
    batch.n_tokens = 0; add(rand() % n_vocab, 0, true); llama_decode(ctx, batch);
    double pp_time = 0, tg_time = 0;
    for (int r = 0; r < reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = 0;
        for (int i = 0; i < pp; i++) add(rand() % n_vocab, i, i == pp - 1);
        double t = now(); llama_decode(ctx, batch); llama_synchronize(ctx); pp_time += now() - t;
        llama_memory_clear(llama_get_memory(ctx), true);
        t = now();
        for (int i = 0; i < tg; i++) {
            batch.n_tokens = 0; add(rand() % n_vocab, i, true);
            llama_decode(ctx, batch); llama_synchronize(ctx);
        }
        tg_time += now() - t;
    }
    printf("reference pp512: %.2f tokens/s\nreference tg64:  %.2f tokens/s\n",
           pp * reps / pp_time, tg * reps / tg_time);
    return 0;
}
