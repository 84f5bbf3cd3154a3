"""The simulated lab's physics engine: qubit states, noise, photons and heralding.

Everything here is plain numpy on density matrices; nothing talks to instruments.
"""
