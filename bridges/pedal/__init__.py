"""The headless pedal box: `musegen pedal` (run.py) from a TOML config (config.py), with
GPIO controls through gpiozero (controls.py) and a systemd unit with sd_notify and a
watchdog (service.py). Needs gpiozero only where there is GPIO to read."""
