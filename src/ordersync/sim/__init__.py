"""ordersync.sim: an Alpaca-compatible broker simulator, an independent model of the broker.

It serves the Alpaca Trading API v2 subset over HTTP and the trade_updates websocket, so alpaca-py (and
ordersync through it) talks to it exactly as to Alpaca. It imports nothing of ordersync's order core, so a
bug there cannot be mirrored here. Start one in-process with `SimServer`, or from the command line with
`serve()`."""

from .clock import ClockSpecError, FastClock, RealClock, SimClock, SteppedClock, parse_clock_spec
from .faults import FaultConfig, NthRequestFault
from .scenarios import ParentModel, Scenario, ScenarioError, default_scenario, load_scenario, parse_scenario
from .server import SimServer, serve
from .simulator import Simulator

__all__ = [
    "ClockSpecError",
    "FastClock",
    "FaultConfig",
    "NthRequestFault",
    "ParentModel",
    "RealClock",
    "Scenario",
    "ScenarioError",
    "SimClock",
    "SimServer",
    "Simulator",
    "SteppedClock",
    "default_scenario",
    "load_scenario",
    "parse_clock_spec",
    "parse_scenario",
    "serve",
]
