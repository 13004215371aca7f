package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/pipeline"
)

// parseWait reads ?wait=: a Go duration ("30s", "1m30s") or whole seconds
// ("30"), from 0 to max.
func parseWait(q string, maxWait time.Duration) (time.Duration, *Problem) {
	if q == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(q)
	if err != nil {
		n, nerr := strconv.Atoi(q)
		if nerr != nil {
			return 0, problem(http.StatusBadRequest, typeBadRequest, "wait=%q: want a duration like 30s or 1m30s, or seconds like 30 "+
				"(at most %s, api.max_wait)", q, pipeline.FormatDuration(maxWait))
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > maxWait {
		return 0, problem(http.StatusBadRequest, typeBadRequest, "wait=%s: want 0s to %s (api.max_wait)", q, pipeline.FormatDuration(maxWait))
	}
	return d, nil
}

// status answers GET /v1/jobs/{id} (every pipeline with results the token
// may use) and GET /v1/pipelines/{pipeline}/jobs/{id} (that one): 200 with
// the status of a finished job, 202 with that of one not finished yet
// (after ?wait= passed), 404 for a job no pipeline knows.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	t, p := s.authorize(r)
	if p != nil {
		p.write(w, r)
		return
	}
	wait, p := parseWait(r.URL.Query().Get("wait"), s.api.MaxWait)
	if p != nil {
		p.write(w, r)
		return
	}
	id := r.PathValue("id")
	var names []string
	if r.PathValue("pipeline") != "" {
		pl, p := s.pipeline(r, t)
		if p != nil {
			p.write(w, r)
			return
		}
		names = []string{pl.Name}
	} else {
		for name, pl := range s.pipelines {
			if pl.Results != nil && t.allows(name) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		if len(names) == 0 {
			problem(http.StatusConflict, typeNoResults, "no pipeline this token may read keeps job results, so no job has a status: "+
				"add a results: block to a pipeline in the pipelines file (docs/jobs.md)").write(w, r)
			return
		}
	}
	// The views that can answer; one that cannot yet (still reading its
	// events, or its topic unreadable) fails the request only if the job
	// is in none of the others.
	var views []*jobs.View
	var notReady *Problem
	for _, name := range names {
		v, p := s.view(name)
		if p != nil && (p.Status != http.StatusServiceUnavailable || len(names) == 1) {
			p.write(w, r)
			return
		}
		if p != nil {
			notReady = cmp.Or(notReady, p)
			continue
		}
		views = append(views, v)
	}
	st := jobs.Status{Job: id, State: jobs.StateUnknown}
	var err error
	if len(views) > 0 {
		st, err = s.find(r.Context(), id, views, wait)
	}
	if err == nil && st.State == jobs.StateUnknown && notReady != nil {
		notReady.write(w, r)
		return
	}
	if err != nil {
		p := problem(http.StatusServiceUnavailable, typeUnavailable, "cannot read the job's events from Kafka: %v", err)
		p.RetryAfter = retryAfterUnavailable
		noteFailure(w, err)
		p.write(w, r)
		return
	}
	if st.State == jobs.StateUnknown {
		problem(http.StatusNotFound, typeUnknownJob, "no job %q: not submitted, not to a pipeline this token may read, "+
			"finished longer ago than the pipeline's results.keep, or of a pipeline without results: (%s), whose jobs have no status",
			id, strings.Join(s.withoutResults(t), ", ")).write(w, r)
		return
	}
	if !st.State.Finished() {
		w.Header().Set("Retry-After", retryAfter(retryAfterRunning))
		writeJSON(w, http.StatusAccepted, st)
		return
	}
	pl := s.pipelines[st.Pipeline]
	if err := jobs.InlineOutputs(r.Context(), s.cfg.Client, pl.Results.ReplyMaxBytes, &st); err != nil && r.Context().Err() == nil {
		s.cfg.Log.Warn("cannot read a finished job's outputs; answering with their places", "job", id, "err", err)
	}
	writeJSON(w, http.StatusOK, st)
}

// find is the status of job id in one of views once each has read what
// the job's partition held when asked — so every server answers the same
// for a job, and a job submitted through another server is known — and
// with wait, once it finished or wait passed. When Kafka cannot say what
// the partition holds, or a view cannot read it within the produce
// timeout, a job a view knows is answered as it knows it; one no view
// knows is an error.
func (s *Server) find(ctx context.Context, id string, views []*jobs.View, wait time.Duration) (jobs.Status, error) {
	var syncErr error
	sctx, cancel := context.WithTimeout(ctx, s.api.ProduceTimeout) // a view that cannot read on does not hold the request
	for _, v := range views {
		syncErr = cmp.Or(syncErr, v.Sync(sctx, id))
	}
	cancel()
	st, in := lookup(id, views)
	if syncErr != nil && in == nil {
		return st, syncErr
	}
	if wait > 0 && !st.State.Finished() {
		if in != nil {
			views = []*jobs.View{in}
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.draining, cancel)()
		var err error
		st, _, err = jobs.WaitAny(wctx, wait, id, views)
		if err != nil && !errors.Is(err, context.Canceled) {
			return st, err
		}
		// Canceled: the client went away (nobody reads the answer), or the
		// server drains: the status as it is.
		st, in = lookup(id, views)
	}
	if in == nil {
		return st, nil
	}
	return in.StatusOf(ctx, id) // whole, also when the view compacted the job
}

// withoutResults are the pipelines t may use that keep no job results.
func (s *Server) withoutResults(t *token) []string {
	var out []string
	for _, pl := range s.cfg.Plan.Pipelines {
		if pl.Results == nil && t.allows(pl.Name) {
			out = append(out, pl.Name)
		}
	}
	if out == nil {
		return []string{"none here"}
	}
	return out
}

// lookup is the status of job id in the first of views that knows it, and
// that view (nil: none knows it).
func lookup(id string, views []*jobs.View) (jobs.Status, *jobs.View) {
	for _, v := range views {
		if st := v.Status(id); st.State != jobs.StateUnknown {
			return st, v
		}
	}
	return jobs.Status{Job: id, State: jobs.StateUnknown}, nil
}

// PipelineInfo describes a pipeline in GET /v1/pipelines.
type PipelineInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Input       string   `json:"input"`
	Output      string   `json:"output,omitempty"`
	Stages      []string `json:"stages"`
	// Results says the pipeline keeps job results: its jobs have a status.
	Results bool `json:"results"`
	// JobsURL is where jobs are submitted (POST).
	JobsURL string `json:"jobs_url"`
}

// Pipelines is the answer of GET /v1/pipelines.
type Pipelines struct {
	Pipelines []PipelineInfo `json:"pipelines"`
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	t, p := s.authorize(r)
	if p != nil {
		p.write(w, r)
		return
	}
	out := Pipelines{Pipelines: []PipelineInfo{}}
	for _, pl := range s.cfg.Plan.Pipelines {
		if !t.allows(pl.Name) {
			continue
		}
		info := PipelineInfo{Name: pl.Name, Description: pl.Description, Input: pl.Input, Output: pl.Output,
			Results: pl.Results != nil, JobsURL: "/v1/pipelines/" + pl.Name + "/jobs"}
		for _, st := range pl.Stages {
			info.Stages = append(info.Stages, st.Name)
		}
		out.Pipelines = append(out.Pipelines, info)
	}
	writeJSON(w, http.StatusOK, out)
}
