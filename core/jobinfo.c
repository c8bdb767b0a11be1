/*
 * core/jobinfo.c: the llmux_job object a job step's answer fills
 * (host.c's job_str and job_int), an llmux_out owns (response.c) and
 * jobs.c hands to the caller. Calls only alloc.c.
 */
#include "internal.h"

struct llmux_job *llmux__out_job(struct llmux_out *o)
{
    if (!o->job && (o->job = llmux__calloc(1, sizeof *o->job)) != NULL)
        o->job->total = o->job->completed = o->job->failed = -1;
    return o->job;
}

void llmux__job_free(struct llmux_job *j)
{
    if (!j)
        return;
    llmux__free(j->id);
    llmux__free(j->state_raw);
    llmux__free(j->input_file);
    llmux__free(j->output_file);
    llmux__free(j->error_file);
    llmux__free(j->model);
    llmux__free(j->endpoint);
    llmux__free(j->errors);
    llmux__buf_free(&j->content);
    llmux__free(j);
}
