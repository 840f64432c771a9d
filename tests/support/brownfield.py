"""A small existing FastAPI service (items), the brownfield repository of the scripted
``tests/fixtures/brownfield.yaml`` transcript, and a driver that runs the model phases
in the workflow's order by calling the activities directly (the transcript covers the
model phases only; the workflow's own run of ``summarize`` is checked end to end on the
demo feature)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from activities.models import Model, ModelRequest, ModelResolver, ModelResponse
from activities.phases.analyze import AnalyzePhase
from activities.phases.constitution import ConstitutionPhase
from activities.phases.implement import ImplementPhase
from activities.phases.plan import PlanPhase
from activities.phases.specify import SpecifyPhase
from activities.phases.summarize import SummarizePhase
from activities.phases.tasks import TasksPhase
from activities.phases.testing import TestPhase
from activities.services import Services
from activities.workspace import Workspaces
from contract import PhaseInput, PhaseOutcome
from tests.support.git import git
from tests.support.repos import phase_input, request

__all__ = ["SERVICE", "FEATURE", "TRANSCRIPT", "existing_service", "Recorder", "run_brownfield"]

TRANSCRIPT = Path(__file__).resolve().parents[1] / "fixtures" / "brownfield.yaml"
FEATURE = "Let items carry tags and filter the item list by tag"

SERVICE: dict[str, str] = {
    "requirements.txt": "fastapi>=0.100\nhttpx>=0.27\npytest>=8\n",
    # addopts = "-q" on top of the runner's own options: pytest prints no summary line.
    "pyproject.toml": (
        '[project]\nname = "items"\nversion = "1.0.0"\n\n'
        '[tool.pytest.ini_options]\naddopts = "-q"\npythonpath = ["."]\ntestpaths = ["tests"]\n'
    ),
    "app/__init__.py": '"""Items service."""\n',
    "app/main.py": (
        '"""The application factory."""\n\nfrom fastapi import FastAPI\n\n'
        "from app import items\n\n\n"
        "def create_app() -> FastAPI:\n"
        '    app = FastAPI(title="Items")\n'
        "    app.state.items = []\n"
        "    app.include_router(items.router)\n"
        "    return app\n\n\napp = create_app()\n"
    ),
    "app/items.py": (
        '"""Items: create and list."""\n\n'
        "from fastapi import APIRouter, Request, status\n"
        "from pydantic import BaseModel, Field\n\n"
        'router = APIRouter(prefix="/items", tags=["items"])\n\n\n'
        "class ItemIn(BaseModel):\n"
        "    name: str = Field(min_length=1, max_length=100)\n\n\n"
        "class Item(ItemIn):\n"
        "    id: int\n\n\n"
        '@router.post("", status_code=status.HTTP_201_CREATED)\n'
        "def create_item(payload: ItemIn, request: Request) -> Item:\n"
        "    items = request.app.state.items\n"
        "    item = Item(id=len(items) + 1, **payload.model_dump())\n"
        "    items.append(item)\n"
        "    return item\n\n\n"
        '@router.get("")\n'
        "def list_items(request: Request) -> list[Item]:\n"
        "    return list(request.app.state.items)\n"
    ),
    "tests/test_items.py": (
        "from fastapi.testclient import TestClient\n\nfrom app.main import create_app\n\n\n"
        "def test_create_and_list():\n"
        "    client = TestClient(create_app())\n"
        '    created = client.post("/items", json={"name": "pen"})\n'
        "    assert created.status_code == 201\n"
        '    assert [(i["id"], i["name"]) for i in client.get("/items").json()] == [(1, "pen")]\n\n\n'
        "def test_name_required():\n"
        "    client = TestClient(create_app())\n"
        '    assert client.post("/items", json={}).status_code == 422\n'
    ),
}


def existing_service(path: Path) -> Path:
    """A user's checkout on ``main`` holding the items service (one commit)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for rel, content in SERVICE.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(content)
    git(path, "add", "-A")
    git(path, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "items service")
    return path


@dataclass
class Recorder:
    """A model wrapper (test double plumbing) keeping every request by script key."""

    requests: dict[str, list[ModelRequest]] = field(default_factory=dict)

    def wrap(self, model: Model) -> Model:
        recorder = self

        class _Recording:
            model_id = model.model_id

            async def request(self, req: ModelRequest) -> ModelResponse:
                task = f"/{req.origin.task_id}" if req.origin.task_id else ""
                key = f"{req.origin.phase}{task}#{req.origin.invocation}"
                recorder.requests.setdefault(key, []).append(req)
                return await model.request(req)

        return _Recording()


async def run_brownfield(tmp: Path) -> tuple[Path, dict[str, PhaseOutcome], Recorder]:
    """Run summarize → constitution → specify → plan → tasks → implement → test → analyze
    on the items service with the brownfield transcript; outcomes by step."""
    repo = existing_service(tmp / "items")
    recorder = Recorder()
    services = Services(
        models=ModelResolver(wrappers=[recorder.wrap]), workspaces=Workspaces(tmp / "scratch")
    )
    info = await services.workspaces.prepare(request(repo, FEATURE), "wf-brownfield")
    model = f"scripted:{TRANSCRIPT}"
    head = info.base_commit
    outcomes: dict[str, PhaseOutcome] = {}

    def inp(phase: str, **kw: object) -> PhaseInput:
        return phase_input(info, head, phase=phase, model=model, workflow_id="wf-brownfield", **kw)

    steps = [
        ("summarize", SummarizePhase(services).run),
        ("constitution", ConstitutionPhase(services).run),
        ("specify", SpecifyPhase(services).run),
        ("plan", PlanPhase(services).run),
        ("tasks", TasksPhase(services).run),
    ]
    for name, run in steps:
        outcomes[name] = await run(inp(name))
        head = outcomes[name].commit
    for task in outcomes["tasks"].tasks:
        outcome = await ImplementPhase(services).run(inp("implement", task_id=task.id))
        outcomes[f"implement/{task.id}"] = outcome
        head = outcome.commit
    outcomes["test"] = await TestPhase(services).run(inp("test"))
    head = outcomes["test"].commit
    outcomes["analyze"] = await AnalyzePhase(services).run(inp("analyze"))
    return repo, outcomes, recorder
