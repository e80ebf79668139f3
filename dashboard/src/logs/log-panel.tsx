import { useEffect, useRef, useState } from "hono/jsx/dom";
import { LogView, type LogLine, type LogViewState } from "./log-view.ts";

type StreamState = "connecting" | "live" | "ended" | "failed";

/**
 * A job's build log, live: the API's Server-Sent Events stream (history, then new lines, then `end`), which the
 * browser resumes by itself after a dropped connection (Last-Event-ID). Search, jump to the first error, follow the
 * tail, download. The log box has a fixed size, so the page around it never moves while lines stream in.
 */
export function LogPanel({ jobId, jobName }: { jobId: string; jobName: string }) {
  const box = useRef<HTMLDivElement>(null);
  const view = useRef<LogView | null>(null);
  const [state, setState] = useState<LogViewState>({ lines: 0, matches: 0, current: 0, following: true, hasError: false });
  const [stream, setStream] = useState<StreamState>("connecting");
  const [term, setTerm] = useState("");

  useEffect(() => {
    const logView = new LogView(box.current!, setState);
    view.current = logView;
    const source = new EventSource(`/v1/jobs/${jobId}/logs/stream`);
    source.addEventListener("open", () => setStream("live"));
    source.addEventListener("log", (event) => logView.append([JSON.parse((event as MessageEvent<string>).data) as LogLine]));
    source.addEventListener("end", () => {
      source.close();
      setStream("ended");
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) setStream((s) => (s === "ended" ? s : "failed"));
      else setStream("connecting");
    });
    return () => {
      source.close();
      logView.dispose();
    };
  }, [jobId]);

  const download = () => {
    const url = URL.createObjectURL(new Blob([view.current?.text() ?? ""], { type: "text/plain" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = `${jobName}-${jobId}.log`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const streamLabel = { connecting: "connecting…", live: "live", ended: "finished", failed: "stream unavailable" }[stream];
  return (
    <div class="log-panel">
      <div class="log-toolbar" role="toolbar" aria-label={`Log of ${jobName}`}>
        <form
          class="log-search"
          role="search"
          onSubmit={(event: Event) => {
            event.preventDefault();
            view.current?.search(term);
          }}
        >
          <label>
            <span class="visually-hidden">Search the log</span>
            <input
              type="search"
              placeholder="Search the log"
              value={term}
              onInput={(event: Event) => {
                const value = (event.target as HTMLInputElement).value;
                setTerm(value);
                view.current?.search(value);
              }}
            />
          </label>
          <button type="button" aria-label="Previous match" disabled={!state.matches} onClick={() => view.current?.step(-1)}>
            ↑
          </button>
          <button type="button" aria-label="Next match" disabled={!state.matches} onClick={() => view.current?.step(1)}>
            ↓
          </button>
          <span class="log-count" aria-live="polite">
            {term.trim() ? `${state.current} of ${state.matches}` : ""}
          </span>
        </form>
        <button type="button" disabled={!state.hasError} onClick={() => view.current?.jumpToFirstError()}>
          First error
        </button>
        <button type="button" aria-pressed={state.following} onClick={() => view.current?.follow()}>
          Follow
        </button>
        <button type="button" disabled={!state.lines} onClick={download}>
          Download
        </button>
        <span class="log-status" data-stream={stream}>
          <span data-testid="log-line-count">{state.lines}</span> lines · {streamLabel}
        </span>
      </div>
      <div class="log-box" ref={box} role="log" aria-live="off" aria-label={`Build log of ${jobName}`} tabindex={0} />
    </div>
  );
}
