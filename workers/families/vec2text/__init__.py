"""vec2text: an inverter (a T5 conditioned on a vector) and its corrector, trained on an encoder's pairs."""
