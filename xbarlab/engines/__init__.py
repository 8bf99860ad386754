"""Engines that solve the crossbar circuit: ``exact`` (sparse nodal analysis),
``structured`` (fast G_non-ideal by block elimination) and ``ngspice``."""
