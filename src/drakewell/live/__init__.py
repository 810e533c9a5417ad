"""The live site controller: signals in, setpoints out, proof of response.

``drakewell site run SITE.toml --inventory FLEET.toml`` runs a site: every interval and on every
demand-response event it reads the grid, decides with the backtest's own ``mpc`` step
(:class:`drakewell.dispatch.policies.MpcPlanner`), commands the fleet
(:class:`drakewell.fleet.Fleet`), checks by read-back that the fleet obeyed, and signs the measured
energy as metering readings.

- :mod:`~drakewell.live.config`: the site file's ``[live]`` table;
- :mod:`~drakewell.live.signals`: clocks, price sources (replay, gridstatus), events and their value;
- :mod:`~drakewell.live.ven`: the OpenADR 2.0b VEN (openleadr);
- :mod:`~drakewell.live.controller`: the loop, safe mode, events, restart from the journal;
- :mod:`~drakewell.live.journal`: the append-only, fsynced JSON-lines journal;
- :mod:`~drakewell.live.meter`: signed readings from telemetry; :mod:`~drakewell.live.metrics`:
  ``/metrics``; :mod:`~drakewell.live.service`: wiring for the CLI.
"""
