"""``python -m voiyd.agent``: the node agent (what an upgraded agent re-executes)."""

from voiyd.agent.main import main

main()
