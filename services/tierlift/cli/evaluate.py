"""`tierlift eval-classifier`, `eval-routing`, `eval` and `calibrate`: offline measurements
on labelled files, each written as JSON (with the command, commit and date) and, for curves,
a chart beside it."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tierlift.cli._connect import LEDGER_HELP, Stub
from tierlift.core.extras import needs
from tierlift.evaluation import data
from tierlift.results import write_result


def _write(path: Path, result: dict[str, Any]) -> None:
    write_result(path, "tierlift " + " ".join(sys.argv[1:]), result)


def cmd_eval_classifier(args: argparse.Namespace) -> int:
    from tierlift.classifier import load_classifier
    from tierlift.evaluation.classifier_eval import evaluate_classifier, load_labelled

    rows = load_labelled(args.data)
    if args.split != "all":
        rows = [r for r in rows if r.get("split", args.split) == args.split]
    result = evaluate_classifier(load_classifier(), rows)
    print(
        f"task type accuracy {result['task_type']['accuracy']:.3f} on {result['task_type']['rows']} rows; "
        f"data class accuracy {result['data_class']['accuracy']:.3f}, "
        f"REGULATED recall {result['data_class']['regulated_recall']}"
    )
    _write(args.out, result)
    return 0


def cmd_eval_detectors(args: argparse.Namespace) -> int:
    from tierlift.classifier import detect_sensitive_data
    from tierlift.evaluation import adversarial, open_world
    from tierlift.v1 import common_pb2

    examples = []
    if args.set in ("adversarial", "all"):
        examples += adversarial.generate(args.split, args.per_family, args.seed)
    if args.set in ("open-world", "all"):
        examples += open_world.generate(args.split, args.per_family, args.seed)
    detect: Callable[[str], Mapping[str, int]] = detect_sensitive_data
    if args.whole_classifier:
        detect = _classifier_findings()
    result = adversarial.evaluate(examples, detect, common_pb2.DATA_CLASS_REGULATED)
    for name, family in result["families"].items():  # type: ignore[attr-defined]
        metric = "regulated_recall" if "regulated_recall" in family else "flagged_sensitive"
        print(f"  {name:<18} {metric:<18} {family[metric]:.3f}  ({family['rows']} rows)")
    print(f"REGULATED recall {result['regulated_recall']:.3f}; look-alikes flagged {result['look_alikes_flagged']:.3f}")
    _write(args.out, {"split": args.split, "set": args.set, "seed": args.seed, **result})
    return 0


def _classifier_findings() -> Callable[[str], Mapping[str, int]]:
    """The whole classifier's verdict on a text as one user message (the detectors, the entity
    recogniser and the learned data head together), as {finding: data class}."""
    from tierlift.classifier import load_classifier
    from tierlift.v1 import classifier_pb2, common_pb2

    classifier = load_classifier()

    def detect(text: str) -> Mapping[str, int]:
        request = classifier_pb2.ClassifyRequest(messages=[common_pb2.Message(role="user", content=text)])
        labels = classifier.classify(request)
        return {kind: labels.detected_data_class for kind in labels.data_findings}

    return detect


def cmd_eval_routing(args: argparse.Namespace) -> int:
    from tierlift.classifier import load_classifier
    from tierlift.evaluation.chart import write_line_chart
    from tierlift.evaluation.routing import evaluate_routing

    outcomes = data.load_outcomes(args.outcomes)
    if args.nested:
        return _eval_routing_nested(args, outcomes)
    if args.adapt:
        return _eval_routing_replay(args, outcomes)
    if args.grouped:
        return _eval_routing_grouped(args, outcomes)
    fresh = [o for o, ok in zip(outcomes, data.held_out(o.prompt for o in outcomes), strict=True) if ok]
    print(f"{len(fresh)} outcomes ({len(outcomes) - len(fresh)} skipped: the router was trained on them)")
    scores = load_classifier().small_model_ok_many([o.prompt for o in fresh])
    abstained = [s == 0 for s in scores]  # no estimate: routed at random
    result = evaluate_routing(scores, fresh, abstained) | {"skipped_trained_on": len(outcomes) - len(fresh)}
    by_source = {}
    for source in sorted({o.source for o in fresh}):
        part = [(s, o) for s, o in zip(scores, fresh, strict=True) if o.source == source]
        r = evaluate_routing([s for s, _ in part], [o for _, o in part], [s == 0 for s, _ in part])
        by_source[source] = {k: v for k, v in r.items() if k != "curve"}
    result["by_source"] = by_source
    print(
        f"to keep 95% of the strong model's accuracy: {result['strong_share_needed']:.1%} of calls to the strong "
        f"model (random routing: {result['strong_share_needed_random_routing']:.1%})"
    )
    _write(args.out, result)
    n = len(result["curve"])
    write_line_chart(
        args.out.with_suffix(".html"),
        "Learned router: accuracy vs share of calls sent to the strong model",
        "share of calls sent to the strong model",
        "accuracy",
        {
            "learned router": [(p["strong_share"], p["accuracy"]) for p in result["curve"]],
            "random routing": [
                (
                    i / (n - 1),
                    result["weak_accuracy"] + i / (n - 1) * (result["strong_accuracy"] - result["weak_accuracy"]),
                )
                for i in range(n)
            ],
        },
        [
            f"{result['prompts']} held-out prompts; target {result['target']}",
            f"strong share needed: learned {result['strong_share_needed']:.1%}, "
            f"random {result['strong_share_needed_random_routing']:.1%}",
        ],
    )
    return 0


def _eval_routing_grouped(args: argparse.Namespace, outcomes: list[data.Outcome]) -> int:
    with needs("eval", "tierlift eval-routing --grouped"):
        from tierlift.evaluation.grouped_routing import grouped_evaluation
    from tierlift.evaluation.embeddings import CachedEmbedder

    embeddings = CachedEmbedder().embed([o.prompt for o in outcomes])
    result = grouped_evaluation(outcomes, embeddings)
    print(f"{result['rows']} prompts, {result['subjects']} MMLU subjects; strong share needed for 95% of the strong "
          "model's accuracy (lower is better), AUROC")  # fmt: skip
    tables = [
        ("random rows, 5-fold", result["random_rows"]),
        ("held-out subjects, 5-fold", result["held_out_subjects"]),
    ]
    tables += [(f"held-out source {source}", rows) for source, rows in result["held_out_sources"].items()]
    for title, rows in tables:
        line = ", ".join(f"{r['method']} {r['strong_share_needed']:.1%} ({r['auroc']})" for r in rows)
        print(f"  {title:<40} {line}; random {rows[0]['strong_share_needed_random_routing']:.1%}")
    _write(args.out, result)
    return 0


def _eval_routing_nested(args: argparse.Namespace, outcomes: list[data.Outcome]) -> int:
    with needs("eval", "tierlift eval-routing --nested"):
        from tierlift.evaluation.nested_routing import nested_evaluation
    from tierlift.classifier._embedder import StaticEmbedder
    from tierlift.classifier._prompt_form import prompt_forms

    prompts = [o.prompt for o in outcomes]
    result = nested_evaluation(outcomes, prompt_forms(prompts), StaticEmbedder().embed_many(prompts))
    print(f"worst outer fold: {result['worst_outer_ratio']:.3f} x random routing's strong share; "
          f"shipped choice: {result['shipped_choice']['chosen']}")  # fmt: skip
    _write(args.out, result)
    return 0


def _eval_routing_replay(args: argparse.Namespace, outcomes: list[data.Outcome]) -> int:
    with needs("eval", "tierlift eval-routing --adapt"):
        from tierlift.evaluation.replay import replay
    from tierlift.classifier import load_classifier

    fresh = [o for o, ok in zip(outcomes, data.held_out(o.prompt for o in outcomes), strict=True) if ok]
    result = replay(fresh, args.adapt, load_classifier().small_model_ok_many, seed=args.seed)
    result["skipped_trained_on"] = len(outcomes) - len(fresh)
    for name, part in result["by_source"].items():
        print(f"  {name:<16} strong share for 95%: adapted {part['adapted']:.1%}, shipped {part['shipped']:.1%}, "
              f"random {part['random']:.1%} ({part['rows']} rows)")  # fmt: skip
    _write(args.out, result)
    return 0


def _first_per_source(tasks: list[data.Task], n: int) -> list[data.Task]:
    taken: dict[str, int] = {}
    kept = []
    for t in tasks:
        if taken.get(t.source, 0) < n:
            taken[t.source] = taken.get(t.source, 0) + 1
            kept.append(t)
    return kept


def cmd_eval(args: argparse.Namespace) -> int:
    from tierlift.adapters.llamacpp import LlamaCppBackend, default_model_path
    from tierlift.classifier import load_classifier
    from tierlift.evaluation.chart import write_line_chart
    from tierlift.router._policy_source import DEFAULT_POLICY, load_policy
    from tierlift.v1 import classifier_pb2, common_pb2

    with needs("eval", "tierlift eval"):
        from tierlift.evaluation.local_tier import run, summarise

    tasks = data.load_tasks(args.tasks)
    if args.part != "all":
        tasks = [t for t in tasks if data.in_training_part(t.input) == (args.part == "train")]
    if args.per_task:
        tasks = _first_per_source(tasks, args.per_task)
    print(f"{len(tasks)} questions through the local tier")
    policy = load_policy(args.policy or DEFAULT_POLICY)
    # the prior the router gives the local rung: the tier's quality where the classifier has no estimate
    priors = [
        policy.prior(common_pb2.TIER_LOCAL, classifier_pb2.Classification(small_model_ok=p))
        for p in load_classifier().small_model_ok_many([t.input for t in tasks])
    ]
    backend = LlamaCppBackend(
        "eval", [args.model], args.gguf or default_model_path(), threads=args.threads, context=2048, parallel=1
    )
    started = time.monotonic()
    graded = run(backend, args.model, tasks, priors, args.max_tokens)
    fitted = policy.confidence_model
    result = summarise(graded, fitted if fitted and args.model in fitted.models else None)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["model"] = args.model
    result["part"] = args.part
    auroc = result.get("auroc_calibrated_confidence", result["auroc_raw_confidence"])
    print(f"accuracy {result['accuracy']:.3f}, AUROC of confidence for correctness {auroc}")
    _write(args.out, result)
    write_line_chart(
        args.out.with_suffix(".html"),
        "Local tier: accuracy vs share of answers escalated (least confident first)",
        "share of answers escalated",
        "accuracy",
        {
            "accuracy of the answers kept locally": [
                (p["escalated_share"], p["kept_accuracy"]) for p in result["curve"]
            ],
            "overall, if escalated answers are right": [
                (p["escalated_share"], p["accuracy_if_escalations_right"]) for p in result["curve"]
            ],
        },
        [f"{result['questions']} questions, accuracy {result['accuracy']:.3f}, AUROC {auroc}"],
    )
    return 0


def cmd_calibrate(args: argparse.Namespace, ledger: Stub) -> int:
    with needs("eval", "tierlift calibrate"):
        from tierlift.evaluation.calibration import calibrate, calibrate_from_ledger

    if not args.from_ledger:
        if args.eval is None:
            raise ValueError("calibrate: give --eval FILE, or --from-ledger")
        print(calibrate(args.eval, args.policy, args.workload, args.max_escalation, args.keep_accuracy))
        return 0
    from tierlift.v1 import ledger_pb2

    query = ledger_pb2.OutcomeQuery(workload=args.workload, model=args.model or "", since=args.since or "")
    judged = ledger(args).ListOutcomes(query, timeout=60)
    out = args.out or args.policy.with_name(f"{args.policy.stem}.{args.workload}.calibrated.yaml")
    result = calibrate_from_ledger(judged, args.policy, out, args.workload, args.max_escalation, args.keep_accuracy)
    before, after = result["held_back_packaged"], result["held_back_calibrated"]
    print(f"{out}: policy {result['version']}, workload {args.workload} on {result['model']}: threshold "
          f"{result['packaged_threshold']:.4f} -> {result['threshold']:.4f}, fitted on {result['trained_on']} judged "
          f"answers\n{result['confidence_model']}")  # fmt: skip
    for name, d in (("packaged", before), ("calibrated", after)):
        print(f"held back ({result['held_back']} answers), {name:<10}: decisions right {d['decision_accuracy']:.1%}, "
              f"escalated {d['escalated_share']:.1%}, kept answers {d['kept_accuracy'] or 0:.1%} right, "
              f"{d['wrong_answers_kept']} wrong answers kept")  # fmt: skip
    head = result["routing_head"]
    if head["fitted"]:
        print(f"routing head for {args.workload}: fitted on {head['trained_on']} judged prompts, floor "
              f"{head['min_prior']}; held-back AUROC {head.get('held_back_auroc_calibrated', '-')} "
              f"(packaged head {head.get('held_back_auroc_packaged', '-')})")  # fmt: skip
    else:
        print(f"routing head for {args.workload}: not fitted ({head['why']})")
    if args.report:
        _write(args.report, result)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], ledger: Stub) -> None:
    p = sub.add_parser("eval-classifier", help="task type and data class accuracy on labelled rows")
    p.add_argument("--data", type=Path, default=Path("data/classifier/labelled.jsonl"), help="JSONL file or folder")
    p.add_argument(
        "--split",
        choices=["train", "test", "all"],
        default="test",
        help="rows of this split only (rows without a split are always kept)",
    )
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_eval_classifier)

    p = sub.add_parser("eval-detectors", help="data-class detectors on adversarial variants and look-alikes")
    p.add_argument("--split", choices=["dev", "held-out"], default="held-out")
    p.add_argument("--per-family", type=int, default=200)
    p.add_argument(
        "--set",
        choices=["adversarial", "open-world", "all"],
        default="all",
        help="adversarial: known identifiers written every way; open-world: the catalogue, unknown formats, "
        "hidden encodings, health without numbers, public numbers",
    )
    p.add_argument("--seed", type=int, default=None, help="draw a fresh set (default: the split's own seed)")
    p.add_argument(
        "--whole-classifier",
        action="store_true",
        help="judge the whole classifier (detectors, entity recogniser, learned data head), not the detectors alone",
    )
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_eval_detectors)

    p = sub.add_parser("eval-routing", help="the learned router's cost/quality curve on weak/strong outcomes")
    p.add_argument(
        "--outcomes",
        type=Path,
        default=Path("data/routing"),
        help="CSV file or folder (prompt, weak_correct, strong_correct; default: data/routing, RouteLLM's outcomes)",
    )
    p.add_argument("--out", type=Path, required=True, help="JSON result; the chart is written beside it as .html")
    p.add_argument(
        "--grouped", action="store_true",
        help="cross-validate routers with whole MMLU subjects and sources held out (minutes: embeds every prompt)",
    )  # fmt: skip
    p.add_argument(
        "--nested", action="store_true",
        help="choose the routing prior's features, C and abstention by nested grouped cross-validation, "
        "and score the choice on outer folds never looked at",
    )  # fmt: skip
    p.add_argument(
        "--adapt", type=int, default=0, metavar="N",
        help="replay: the outcomes as one organisation's traffic in a fixed shuffled order, the first N fed to "
        "the workload routing-head fit of `calibrate --from-ledger`, the adapted prior scored on the rest",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=7, help="--adapt: the order of the traffic")
    p.set_defaults(func=cmd_eval_routing)

    p = sub.add_parser("eval", help="the local tier's accuracy and how well its confidence predicts correctness")
    p.add_argument(
        "--tasks",
        type=Path,
        default=Path("data/tasks"),
        help="JSONL file or folder (input, target / target_scores; default: data/tasks, BIG-bench questions)",
    )
    p.add_argument("--out", type=Path, required=True, help="JSON result; the chart is written beside it as .html")
    p.add_argument(
        "--part",
        choices=["train", "test", "all"],
        default="all",
        help="the hash split of the questions: calibrate on train, report on test",
    )
    p.add_argument("--per-task", type=int, default=0, help="at most this many questions per task file (0: all)")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--model", default="gemma-3-270m-cpu")
    p.add_argument("--gguf", type=Path, help="GGUF file (default: the packaged Gemma 3 270M)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--policy", type=Path, help="policy whose confidence model to apply (default: the packaged one)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", help="fit the confidence model and a workload's threshold into a policy file")
    p.add_argument("--eval", type=Path, help="output of `tierlift eval` (on the train part)")
    p.add_argument("--policy", type=Path, required=True, help="policy YAML to update (--from-ledger: to start from)")
    p.add_argument("--workload", required=True)
    p.add_argument("--from-ledger", action="store_true", help="fit on the workload's shadow-judged answers instead")
    p.add_argument("--model", help="--from-ledger: the model path (default: the workload's busiest LOCAL model)")
    p.add_argument("--since", help="--from-ledger: RFC 3339 (default: 30 days ago)")
    p.add_argument("--out", type=Path, help="--from-ledger: the new policy file (default: beside --policy)")
    p.add_argument("--report", type=Path, help="--from-ledger: also write the before/after as JSON")
    p.add_argument("--ledger", help=LEDGER_HELP)
    p.add_argument("--key", help="admin API key (default: TIERLIFT_API_KEY or the running stack's)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--max-escalation", type=float, help="e.g. 0.3: escalate at most 30%% of answers")
    target.add_argument(
        "--keep-accuracy", type=float, help="e.g. 0.95: the answers kept locally must be at least this accurate"
    )
    p.set_defaults(func=lambda args: cmd_calibrate(args, ledger))
