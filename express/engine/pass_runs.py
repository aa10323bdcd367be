"""Runs of Pass states fused into one generated step.

A Pass state that only builds its Result or Parameters and writes it at ``$`` or ``$.key`` (the
bulk of real Pass states) does nothing but compute, so a chain of them (``P1 -> P2 -> ...``,
optionally ending in a plain Succeed) runs as one step: one generated function evaluates their
templates in turn (:class:`express.asl.payload.Inliner`: the paths they share are read once),
writes every result into one dict of its own, and measures what they added with one
``orjson.dumps`` of their dynamic values, against the 256 KiB bound and MAX_DEPTH at once.

Copies. The first state of a run copies its input once (it may be the caller's, or shared with a
Parallel branch); the states after it write into that copy. A run that follows another run gets
the dict the other one made, which nothing else can hold (the runner passes it straight from one
step to the next): it writes into it in place, noting what it overwrites, so that a Pass chain
of any length costs the same per state (:class:`_Owned`). A state whose result may hold its input
itself (``"all.$": "$"``) copies the dict before writing.

Exactness. The fast path commits nothing (event ids, transitions, the size bound) until every
state of the run succeeded within the bound; otherwise the run's input is restored and the states
run one by one with their own steps (:meth:`PassRun.replay`), which raise exactly what each would
(AWS's error, the state it names, its event id) or, near the bound, measure the real payload.
"""
from __future__ import annotations

from typing import Any

from express.asl.payload import Inliner
from express.engine.frame import Frame
from express.engine.runner import FIRST_CHECK, Block
from express.engine.states import ChoiceState, PassState, State, SucceedState

MAX_RUN = FIRST_CHECK  # states per fused step: the runner's checkpoints count steps
_MISSING: Any = object()  # a key the run added (undone by deleting it)
_UNSET: Any = object()  # a write the run did not reach


class _Member:
    __slots__ = ("state", "kind", "key", "source", "literal")

    def __init__(self, state: State, kind: str, key: str | None, source: Any, literal: bool) -> None:
        self.state = state
        self.kind = kind  # "set" ($.key), "replace" ($) or "succeed" (the run's plain Succeed)
        self.key = key
        self.source = source  # the template or literal
        self.literal = literal


def _member(state: State) -> _Member | None:
    """The state as a member of a run, if it is a Pass state of the simple shape."""
    if type(state) is not PassState or getattr(state, "single", None) is None:
        return None
    source = state.source
    if source is None:
        return None
    rp = state.flow.result_path
    if rp is None:
        return _Member(state, "replace", None, source[1], source[0] == "Result")
    key = getattr(rp, "key", None)
    if key is None:
        return None
    return _Member(state, "set", key, source[1], source[0] == "Result")


def _plain_succeed(state: Any) -> bool:
    flow = getattr(state, "flow", None)
    return (type(state) is SucceedState and flow is not None and not flow.jsonata and not state.track_context
            and flow.input_path is None and flow.output_path is None and flow.assign is None)


class _Owned:
    """A run entered with a dict that only it holds (another run made it): the target the run
    before it transitions to, in place of the run's first state."""

    __slots__ = ("step", "name")
    is_async = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.step: Any = None


class PassRun:
    """The states of one run and their fused steps."""

    def __init__(self, members: list[_Member]) -> None:
        self.members = members
        self.head = members[0].state
        self.after: Any = None  # the state after the run (None: the run ends the block)
        self.after_entry: Any = None  # what the fast path transitions to: ``after``, or its owned entry
        self.owned: _Owned | None = None  # the entry for a dict only the run holds, if a run goes there
        self._undo_keys: tuple[str, ...] = ()  # what the owned entry writes into the dict it is given

    def makes_dict(self) -> bool:
        """Whether what the run leaves is always a dict it made (to hand to the next run)."""
        first = self.members[0]
        return first.kind == "set" or type(first.source) is dict

    def replay(self, frame: Frame, data: Any) -> tuple[Any, Any]:
        """The states one by one, each with its own step: exactly what the fast path stands for."""
        ex = frame.execution
        first = True
        for m in self.members:
            if not first:
                ex.transitions += 1
            first = False
            _, data = m.state.single(frame, data)  # type: ignore[misc]  # set for every member
        return self.after, data

    def undo_and_replay(self, frame: Frame, data: dict[str, Any], writes: tuple[Any, ...]) -> tuple[Any, Any]:
        """The owned entry's way back: restore the dict it was given, then replay."""
        for key, old in reversed(list(zip(self._undo_keys, writes, strict=True))):
            if old is _UNSET:
                continue
            if old is _MISSING:
                data.pop(key, None)
            else:
                data[key] = old
        return self.replay(frame, data)

    # ------------------------------------------------------------------ code
    def build(self) -> None:
        """Generate the fused steps (once every run of the block is linked to the next)."""
        self.head.step = self._generate(False, self.after_entry)  # type: ignore[method-assign]
        if self.owned is not None:
            self.owned.step = self._generate(True, self.after_entry)

    def _generate(self, owned: bool, after: Any) -> Any:
        inl = Inliner("d", "f")
        members = self.members
        set_head = members[0].kind == "set"
        body: list[str] = []
        undo: list[str] = []  # keys written into the dict the run was given (owned entry)
        shared = owned  # does ``d`` still name the dict the run was given?
        body.append("d = data.copy()" if set_head and not owned else "d = data")
        static = 0
        events = 0
        transitions = 0
        # What the run leaves is bounded by what it was given (set: the run's writes add to it;
        # replace: a result made of distinct parts of it)
        grows = set_head
        for m in members:
            events += 2
            transitions += 1
            if m.kind == "succeed":
                continue
            depth = 1 if m.kind == "set" else 0
            start = len(inl.lines)
            emitted = inl.literal(m.source, depth) if m.literal else inl.template(m.source, depth, not set_head)
            if emitted is None:  # cannot happen for a member (checked when the run was formed)
                raise ValueError(f"state {m.state.name!r} cannot be inlined")
            expr, size, holds = emitted.expr, emitted.static, emitted.holds_data
            grows = grows or emitted.within_data
            body.extend(inl.lines[start:])
            static += size
            if m.kind == "replace":
                body.append(f"d = {expr}")
                inl.replaced()
                shared = False
                continue
            key = m.key
            assert key is not None
            if holds:  # the result may hold the dict itself: write into a copy
                body.append("d = d.copy()")
                shared = False
            if shared:
                body.append(f"_u{len(undo)} = d.get({key!r}, _MISSING)")
                undo.append(key)
            body.append(f"d[{key!r}] = {expr}")
            inl.written(key)
            static += m.state.result_key_bytes
        sized = inl.size_code()
        if sized is not None:
            body.append(f"_n = {sized[0]}")
            static -= sized[1]
        env: dict[str, Any] = dict(inl.env)
        env.update(_MISSING=_MISSING, _after=after)
        if owned and undo:
            self._undo_keys = tuple(undo)
            writes = "(" + "".join(f"_u{i}, " for i in range(len(undo))) + ")"
            back = f"_replay(f, data, {writes})"
            env["_replay"] = self.undo_and_replay
        else:
            back = "_replay(f, data)"
            env["_replay"] = self.replay
        src = ["def run(f, data):"]
        if set_head and not owned:
            src += ["    if type(data) is not dict:", "        return _replay(f, data)"]
        if undo and owned:
            src.append("    " + " = ".join(f"_u{i}" for i in range(len(undo))) + " = _UNSET")
            env["_UNSET"] = _UNSET
        src.append("    try:")
        src += ["        " + line for line in body]
        src += ["    except Exception:", f"        return {back}"]
        src.append("    ex = f.execution")
        total = ("f.size + " if grows else "") + ("_n + " if sized is not None else "") + str(static)
        src += [f"    size = {total}", "    if size > ex.limit:", f"        return {back}", "    f.size = size",
                f"    ex.event_id += {events}"]
        if transitions > 1:
            src.append(f"    ex.transitions += {transitions - 1}")
        src.append("    return _after, d")
        ns: dict[str, Any] = env
        name = members[0].state.name
        exec(compile("\n".join(src) + "\n", f"<express:pass-run:{name}>", "exec"), ns)  # noqa: S102
        return ns["run"]


def _inlinable(m: _Member) -> bool:
    inl = Inliner()
    depth = 1 if m.kind == "set" else 0
    return (inl.literal(m.source, depth) if m.literal else inl.template(m.source, depth)) is not None


def fuse(block: Block) -> None:
    """Give every run of simple Pass states of ``block`` one fused step (compiled, unlogged
    blocks only: a logged state must log each of its own events)."""
    states = list(block.states.values())
    incoming: dict[int, int] = {}

    def enters(target: Any) -> None:
        if target is not None:
            incoming[id(target)] = incoming.get(id(target), 0) + 1

    enters(block.start)
    for st in states:
        enters(st.next)
        if isinstance(st, ChoiceState):
            for rule in st.resolved:
                enters(rule[1])
            enters(st.default)
        for c in getattr(st, "catchers", ()):
            enters(c.next)
    members: dict[int, _Member] = {}
    for st in states:
        m = _member(st)
        if m is not None and _inlinable(m):
            members[id(st)] = m

    def continues(m: _Member) -> _Member | None:
        """The member that may follow ``m`` in its run: the state after it, entered only from it."""
        if m.kind == "replace" and type(m.source) is not dict:
            return None  # what it builds is no object: the next write must fail on its own
        nxt = members.get(id(m.state.next)) if m.state.next is not None else None
        if nxt is None or nxt.kind != "set" or incoming.get(id(nxt.state)) != 1 or nxt.state is block.start:
            return None
        return nxt

    followers = {id(n.state) for n in (continues(m) for m in members.values()) if n is not None}
    heads = [m for m in members.values() if id(m.state) not in followers]
    runs: dict[int, PassRun] = {}
    while heads:
        m = heads.pop()
        if id(m.state) in runs:
            continue
        run_members = [m]
        cur: _Member | None = m
        while True:
            nxt = continues(cur)  # type: ignore[arg-type]
            if nxt is None or id(nxt.state) in runs:
                break
            if len(run_members) == MAX_RUN:
                heads.append(nxt)  # the next run starts there, with the dict this one made
                break
            run_members.append(nxt)
            cur = nxt
        last = run_members[-1].state
        after = last.next
        if after is not None and len(run_members) < MAX_RUN and _plain_succeed(after):
            after.single = after.step  # its own step, as it is: a Succeed is never replaced
            run_members.append(_Member(after, "succeed", None, None, False))
            after = None
        run = PassRun(run_members)
        run.after = run.after_entry = after
        runs[id(m.state)] = run
    for run in runs.values():
        target = runs.get(id(run.after)) if run.after is not None else None
        if target is not None and target.members[0].kind == "set" and run.makes_dict():
            if target.owned is None:
                target.owned = _Owned(target.head.name)
            run.after_entry = target.owned
    for run in runs.values():
        run.build()
