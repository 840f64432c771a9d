"""All I/O of Backforge: phases, models, workspaces, the sandbox.

Nothing is imported here: importing one module (``activities.workspace``, say)
loads that module and what it needs, not every activity. The worker registers
the activities (``worker.py``).

- ``phases/``: one module per phase activity (and the merge/prepare steps)
- ``model_phase.py``: what every model-driven phase does around its own work
- ``agent.py``, ``tools.py``: the agent loop and its toolset
- ``prompts/``: everything a model reads, as templates
- ``speckit.py``: the Spec Kit layout, task lines, clarification markers
- ``workspace.py``: the feature's git working trees
- ``project_tests.py``, ``sandbox/``: running generated code
- ``models/``: the model interface, providers, the scripted test double, the run store
- ``services.py``: what the worker injects into its activities
"""
