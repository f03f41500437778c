"""Text-to-speech attacks from Debian's synthesisers: espeak-ng, festival voices and flite.

Each job is ``(engine, voice, text)``; :func:`synthesize` returns 16 kHz float arrays in job
order. Festival runs one batch process per voice (starting it costs ~0.3 s), espeak-ng and
flite one short process per utterance.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.speech_corpus.dsp import resample

# Festival voice -> language (the voice's own; texts are written in it).
FESTIVAL_DIPHONE = {
    "kal_diphone": "en",
    "ked_diphone": "en",
    "lp_diphone": "it",
    "pc_diphone": "it",
    "suo_fi_lj_diphone": "fi",
    "czech_dita": "cs",
}
FESTIVAL_HTS = {"cmu_us_slt_arctic_hts": "en", "upc_ca_ona_hts": "ca"}
FLITE_VOICES = ("slt", "rms", "awb", "kal16")

# Short telephone-prompt style sentences (ASCII, so every synthesiser reads them alike).
SENTENCES = {
    "en": [
        "Please enter your account number followed by the pound key.",
        "Your call is important to us, please stay on the line.",
        "The person you are calling is not available.",
        "You have two new messages.",
        "Press one to repeat this menu.",
        "Thank you for calling, goodbye.",
        "The number you have dialed is not in service.",
        "Please leave a message after the tone.",
        "All our agents are busy at the moment.",
        "To speak to an operator, press zero.",
        "Your password has been changed.",
        "That extension is invalid, please try again.",
    ],
    "es": [
        "Por favor marque su numero de cuenta.",
        "Su llamada es muy importante para nosotros.",
        "La persona que usted llama no esta disponible.",
        "Usted tiene dos mensajes nuevos.",
        "Oprima uno para repetir este menu.",
        "Gracias por llamar, hasta luego.",
        "Deje su mensaje despues del tono.",
        "Todos nuestros agentes estan ocupados.",
        "Para hablar con una operadora marque cero.",
        "La extension es incorrecta, intente de nuevo.",
    ],
    "fr": [
        "Veuillez composer votre numero de compte.",
        "Votre appel est important pour nous.",
        "Votre correspondant n'est pas disponible.",
        "Vous avez deux nouveaux messages.",
        "Appuyez sur la touche un pour reecouter ce menu.",
        "Merci de votre appel, au revoir.",
        "Laissez votre message apres le signal sonore.",
        "Tous nos conseillers sont occupes.",
        "Pour parler a un operateur, tapez zero.",
        "Ce poste est invalide, veuillez recommencer.",
    ],
    "it": [
        "Per favore inserisca il numero del conto.",
        "La sua chiamata e importante per noi.",
        "La persona chiamata non e disponibile.",
        "Lei ha due nuovi messaggi.",
        "Prema uno per ascoltare di nuovo il menu.",
        "Grazie per aver chiamato, arrivederci.",
        "Lasci un messaggio dopo il segnale acustico.",
        "Tutti i nostri operatori sono occupati.",
        "Il numero selezionato non e attivo.",
        "Per parlare con un operatore prema zero.",
    ],
    "ca": [
        "Si us plau, marqui el seu numero de compte.",
        "La seva trucada es important per a nosaltres.",
        "La persona que truca no esta disponible.",
        "Vosté te dos missatges nous.",
        "Premi u per repetir aquest menu.",
        "Gracies per trucar, adeu.",
        "Deixi el seu missatge despres del senyal.",
        "Tots els nostres agents estan ocupats.",
    ],
    "fi": [
        "Olkaa hyva ja nappailkaa tilinumeronne.",
        "Puhelunne on meille tarkea.",
        "Tavoittelemanne henkilo ei ole tavoitettavissa.",
        "Teilla on kaksi uutta viestia.",
        "Kiitos soitostanne, nakemiin.",
        "Jattakaa viesti aanimerkin jalkeen.",
        "Kaikki asiakaspalvelijamme ovat varattuja.",
    ],
    "cs": [
        "Zadejte prosim cislo sveho uctu.",
        "Vas hovor je pro nas dulezity.",
        "Volany ucastnik neni dostupny.",
        "Mate dve nove zpravy.",
        "Dekujeme za zavolani, na shledanou.",
        "Zanechte prosim vzkaz po zaznenim signalu.",
        "Vsichni nasi operatori jsou obsazeni.",
    ],
}
NUMBER_WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "es": ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"],
    "fr": ["zero", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
    "it": ["zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"],
    "ca": ["zero", "u", "dos", "tres", "quatre", "cinc", "sis", "set", "vuit", "nou"],
    "fi": [
        "nolla",
        "yksi",
        "kaksi",
        "kolme",
        "nelja",
        "viisi",
        "kuusi",
        "seitseman",
        "kahdeksan",
        "yhdeksan",
    ],
    "cs": ["nula", "jedna", "dva", "tri", "ctyri", "pet", "sest", "sedm", "osm", "devet"],
}
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5")


@dataclass(frozen=True)
class Job:
    engine: str  # espeak-ng | festival | flite
    voice: str  # espeak language+variant, festival voice, flite voice
    text: str
    rate: float = 1.0  # speaking-rate factor (espeak-ng and flite)


def sentence(rng: np.random.Generator, language: str, words: list[str] | None = None) -> str:
    """A prompt sentence, a digit string or, given ``words``, a short word list."""
    choice = rng.random()
    if words and choice < 0.4:
        return ", ".join(rng.choice(words, size=int(rng.integers(2, 6)))) + "."
    base = language if language in SENTENCES else "en"
    if choice < 0.7:
        return str(rng.choice(SENTENCES[base]))
    digits = rng.choice(NUMBER_WORDS[base], size=int(rng.integers(3, 8)))
    return " ".join(digits)


def text(rng: np.random.Generator, language: str, parts: int, words: list[str] | None = None):
    """``parts`` pieces of :func:`sentence` read one after the other."""
    return " ".join(sentence(rng, language, words) for _ in range(parts))


def espeak_voices() -> set[str]:
    """Language codes espeak-ng knows."""
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True)
    return {line.split()[1] for line in out.stdout.splitlines()[1:] if line.split()}


def _festival_string(text: str) -> str:
    return '"' + text.replace("\\", "").replace('"', "") + '"'


def synthesize(jobs: list[Job], workdir: Path) -> list[np.ndarray]:
    """Run every job; 16 kHz mono float64 arrays in job order."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = [workdir / f"tts_{i:05d}.wav" for i in range(len(jobs))]
    festival: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        if job.engine == "festival":
            festival.setdefault(job.voice, []).append(i)
        elif job.engine == "espeak-ng":
            speed = str(int(160 * job.rate))
            subprocess.run(
                ["espeak-ng", "-v", job.voice, "-s", speed, "-w", str(paths[i]), job.text],
                check=True,
                capture_output=True,
            )
        elif job.engine == "flite":
            stretch = f"{1 / job.rate:.3f}"
            subprocess.run(
                [
                    "flite",
                    "-voice",
                    job.voice,
                    "--setf",
                    f"duration_stretch={stretch}",
                    "-t",
                    job.text,
                    "-o",
                    str(paths[i]),
                ],
                check=True,
                capture_output=True,
            )
        else:
            raise ValueError(f"unknown TTS engine {job.engine!r}")
    for voice, indices in festival.items():
        lines = [f"(voice_{voice})"]
        for i in indices:
            lines.append(f"(set! u (utt.synth (Utterance Text {_festival_string(jobs[i].text)})))")
            lines.append(f'(utt.save.wave u "{paths[i]}" \'riff)')
        with tempfile.NamedTemporaryFile(
            "w", suffix=".scm", dir=workdir, delete=False, encoding="latin-1", errors="replace"
        ) as script:
            script.write("\n".join(lines) + "\n")
        subprocess.run(["festival", "-b", script.name], check=True, capture_output=True)
        Path(script.name).unlink()
    out = []
    for path in paths:
        audio, rate = sf.read(path, dtype="float64", always_2d=True)
        out.append(resample(audio.mean(axis=1), rate))
        path.unlink()
    return out
